"""`make bench`: run every registered benchmark once, write output/bench/results.json, print a table.

A benchmark is a function in BENCHMARKS returning a dict of named measurements. Numbers
from one run are compared as ratios inside that run (machines are shared and noisy).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable

PROJECT = Path(__file__).resolve().parents[2]
OUTPUT = PROJECT / "output" / "bench" / "results.json"

BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {}


def main() -> None:
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "benchmarks": {name: bench() for name, bench in BENCHMARKS.items()},
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'benchmark':40} {'measure':30} {'value':>12}")
    for name, measures in results["benchmarks"].items():
        for measure, value in measures.items():
            print(f"{name:40} {measure:30} {value:12.3f}")
    if not BENCHMARKS:
        print("(no benchmarks registered yet)")
    print(f"results: {OUTPUT.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
