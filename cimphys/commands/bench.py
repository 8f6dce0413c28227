"""Run the benchmarks (benchmarks/bench_*.py of a source checkout) and print their tables.

Each benchmark module defines ``run(quick=False) -> list[Record]``; targets are ratios against a
peer timed in the same run.  Exits 1 if any record misses its target.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="benchmarks to run, e.g. sweep for bench_sweep.py (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write every record as JSON here")
    parser.add_argument("--dir", type=Path, default=None, help="benchmarks folder (default: the checkout's)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")


def benchmarks_dir(folder: Path | None = None) -> Path:
    """The benchmarks folder; a clear error outside a source checkout."""
    from ..errors import InputError

    folder = folder or Path(__file__).resolve().parents[2] / "benchmarks"
    if not (folder / "_common.py").is_file():
        raise InputError(
            f"no benchmarks at {folder}: 'cimphys bench' runs from a source checkout "
            f"(git clone, then pip install -e .), or pass --dir"
        )
    return folder


def main(args: argparse.Namespace) -> int:
    import importlib.util
    import json
    import sys
    from dataclasses import asdict

    from ..errors import InputError

    folder = benchmarks_dir(args.dir)
    found = {p.stem.removeprefix("bench_"): p for p in sorted(folder.glob("bench_*.py"))}
    if args.list:
        print("\n".join(found))
        return 0
    unknown = [n for n in args.names if n not in found]
    if unknown:
        raise InputError(f"no benchmark {unknown[0]!r} in {folder} (have: {', '.join(found) or 'none'})")
    sys.path.insert(0, str(folder))  # the modules import their helpers as `_common`
    common = importlib.import_module("_common")
    records, ok = [], True
    for name in args.names or list(found):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", found[name])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an import would: the module may look itself up
        spec.loader.exec_module(module)
        got = module.run(quick=args.quick)
        print(f"== {name}\n{common.format_table(got)}\n")
        ok &= all(r.passed for r in got)
        records += [{"benchmark": name, **asdict(r), "ratio": r.ratio, "passed": r.passed} for r in got]
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
        print(f"wrote {args.json}")
    return 0 if ok else 1
