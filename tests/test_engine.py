"""The offline engine itself: isolation, determinism, and scale."""

from __future__ import annotations

from eks_gpu.offline import run_program
from eks_gpu.offline.bench import stack_with_pools
from eks_gpu.offline.deployer import with_deployer


def test_fifty_pools_run_and_grow_linearly() -> None:
    config, _ = with_deployer(stack_with_pools(50)["config"])
    result = run_program(config)
    pools = [r for r in result.of_type("aws:eks/nodeGroup:NodeGroup") if not r.name.endswith("-system-ng")]
    assert len(pools) == 50
    one = run_program(with_deployer(stack_with_pools(1)["config"])[0])
    two = run_program(with_deployer(stack_with_pools(2)["config"])[0])
    per_pool = len(two.resources) - len(one.resources)
    assert per_pool > 0
    assert len(result.resources) - len(one.resources) == 49 * per_pool  # every pool adds the same resources


def test_consecutive_runs_do_not_leak_into_each_other() -> None:
    config, _ = with_deployer(stack_with_pools(2)["config"])
    first = run_program(config)
    for _ in range(5):
        again = run_program(config)
        assert again.resources == first.resources
        assert again.outputs == first.outputs
