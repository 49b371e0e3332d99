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


def test_aws_throttling_is_registered_and_measures_the_ratio_against_its_goal():
    runner = load_bench_runner()
    assert callable(runner.BENCHMARKS["aws_throttling"])
    assert (runner.THROTTLED_SEATS, runner.THROTTLED_PERCENT, runner.THROTTLED_GOAL) == (40, 10, 2.0)
    assert runner.THROTTLED_RATIO == "aws_throttled_ratio_40"
    assert (PROJECT / "tests" / "fault_proxy" / "server.py").is_file()


def test_multisite_is_registered_and_measures_the_ratio_against_its_goal():
    runner = load_bench_runner()
    assert callable(runner.BENCHMARKS["multisite"])
    assert (runner.MULTISITE_SEATS, runner.MULTISITE_GOAL, runner.MULTISITE_RATIO) == (30, 0.6, "multisite_ratio_30")
