"""`eks-gpu`: the project's command line (the console script ``pyproject.toml`` installs).

    eks-gpu plan [--stack dev] [--json] [--diagram FILE] [--against OLD.json --fail-on replace]

One subcommand, ``plan`` (:mod:`eks_gpu.offline.plan`, what ``make plan`` runs): everything after it
is the plan's own options, and its exit code is the command's (the table in that module's docstring:
0 ok, 1 stack file wrong, 2 command line wrong, 3 ``--fail-on`` matched, 4 mandatory policy
violated). CI calls ``eks-gpu plan`` (or ``.venv/bin/eks-gpu plan``) directly: ``make`` reports a
failing recipe's code ("Error 3") but exits 2 whatever it was. ``plan`` needs the ``offline`` extra
(moto, boto3, PyYAML, pulumi-policy): ``pip install 'eks-gpu[offline]'``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence


def _plan(argv: Sequence[str]) -> int:
    from eks_gpu.offline import plan  # imports the offline extra: only when asked for

    return plan.main(argv, prog="eks-gpu plan")


COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "plan": ("what `pulumi up` would build for a stack, its cost and its policy results, offline", _plan),
}
"""Subcommand -> its one-line help and what runs it (with the arguments after it)."""


def run(argv: Sequence[str]) -> int:
    """Run the subcommand ``argv`` names with the rest of ``argv``; its exit code."""
    parser = argparse.ArgumentParser(prog="eks-gpu", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _) in COMMANDS.items():
        # the subcommand's options are its own parser's: passed through untouched (add_help: so is --help)
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    return COMMANDS[args.command][1](rest)


def main() -> None:
    """The console script: exit with :func:`run`'s code.

    A one-shot command: the collector would walk the SDKs' module graphs again and again while they
    import, and tearing them down at exit takes as long as the plan itself. Nothing here needs either:
    collect nothing, flush, and leave with the code (``os._exit``; argparse's own exits go through
    ``SystemExit`` as usual).
    """
    gc.disable()
    code = run(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
