"""`make bench` measures something: the registry names the AWS benchmark and its playbooks exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
BENCH = PROJECT / "tests" / "bench"


def load_bench_runner():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aws_fleet_vs_loop_is_registered_with_its_playbooks():
    runner = load_bench_runner()
    assert "aws_fleet_vs_loop" in runner.BENCHMARKS
    assert callable(runner.BENCHMARKS["aws_fleet_vs_loop"])
    for playbook in ("fleet.yml", "loop.yml", "vars/bench.yml"):
        assert (runner.PLAYBOOKS / playbook).is_file(), playbook
