# make test: the whole offline suite (CI runs it through .ci/run).
# make plan: what `pulumi up` would build for a stack, its cost per hour and its policy results,
#            offline (STACK=prod make plan; make plan ARGS=--json; make plan ARGS="--diagram arch.mmd").
# make bench: time and peak memory of the plan for 1, 10 and 50 GPU pools.
# make mutation: mutmut over components/ with the offline suite (slow: hours; MUTANTS="eks_gpu.design.tags*"
#                runs only the mutants whose names match; SAMPLE=100 a seeded random sample, scored;
#                docs/testing.md "Mutation testing").
# make charts: fetch the pinned Helm charts into .charts/ (online; tests fall back to ../shared/charts).
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
ARGS ?=
MUTANTS ?=
SAMPLE ?=
SEED ?= 12

.PHONY: test lint plan bench charts venv clean mutation

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# each example is a program of its own (two modules named __main__ cannot share one mypy run)
	@for program in examples/*/__main__.py; do $(VENV)/bin/mypy --no-error-summary $$program || exit 1; done

test: venv lint
	$(PY) -m pytest -n auto --dist loadfile

# make reports the plan's exit code ("Error 4") but exits 2 whatever it was: CI calls
# $(VENV)/bin/eks-gpu plan itself (docs/review.md "Review output and exit codes").
plan: venv
	@$(VENV)/bin/eks-gpu plan --stack $(STACK) $(ARGS)

bench: venv
	@$(PY) -m eks_gpu.offline.bench

# src -> components for the run only: mutmut derives a mutant's module from its path and strips only
# "src." (pyproject [tool.mutmut]); removed afterwards, whatever the outcome.
mutation: venv
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-mutation.txt
	@test ! -e src -o -L src || { echo "src exists and is not make mutation's link" >&2; exit 1; }
	ln -sfn components src
ifdef SAMPLE
	EKS_GPU_SHARED_CHARTS=$(abspath ../shared/charts) $(PY) -m tests.mutation_sample --sample $(SAMPLE) --seed $(SEED); \
	  status=$$?; rm -f src; exit $$status
else
	env -u PYTHONDONTWRITEBYTECODE EKS_GPU_SHARED_CHARTS=$(abspath ../shared/charts) $(VENV)/bin/mutmut run --max-children 2 $(MUTANTS); \
	  status=$$?; rm -f src; exit $$status
	$(VENV)/bin/mutmut results
endif

charts: venv
	@$(PY) -m tests.fetch_charts

clean:
	rm -rf $(VENV) mutants .pytest_cache .mypy_cache .ruff_cache
