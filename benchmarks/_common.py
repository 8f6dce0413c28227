"""Shared helpers for the benchmarks: best-of-n timing, peak memory, and the result table.

Every benchmark module in this folder defines ``run(quick: bool = False) -> list[Record]`` and
ends with ``if __name__ == "__main__": main(run)``.  Targets are ratios against a peer timed in
the same run (never absolute seconds), so they hold on any machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Record:
    """One measured figure and its target.

    ``ratio`` is peer time / our time (higher is better) unless ``lower_is_better``.
    """

    name: str
    ours: float
    peer_name: str
    peer: float
    unit: str
    target: float
    lower_is_better: bool = False
    notes: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.lower_is_better else self.peer / self.ours

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target if self.lower_is_better else self.ratio >= self.target


def best_of(fn, repeat: int = 3, number: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls of ``fn`` over ``repeat`` trials."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def peak_python_bytes(fn) -> int:
    """Peak bytes allocated through Python/NumPy while ``fn`` runs (tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def format_table(records: list[Record]) -> str:
    head = f"{'benchmark':52s} {'ours':>11s} {'peer':>11s} {'ratio':>8s} {'target':>8s}  ok"
    lines = [head, "-" * len(head)]
    for r in records:
        cmp = "<=" if r.lower_is_better else ">="
        lines.append(
            f"{r.name:52s} {r.ours:11.4g} {r.peer:11.4g} {r.ratio:8.3g} {cmp}{r.target:<6g}  "
            f"{'yes' if r.passed else 'NO'}   [{r.unit}; peer: {r.peer_name}] {r.notes}"
        )
    return "\n".join(lines)


def main(run) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the records as JSON here")
    args = parser.parse_args()
    records = run(quick=args.quick)
    print(format_table(records))
    if args.json:
        payload = [{**asdict(r), "ratio": r.ratio, "passed": r.passed} for r in records]
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    sys.exit(0 if all(r.passed for r in records) else 1)
