"""Run every validation campaign (validation/*.py) and write report.md with its numbers.

Each campaign module defines ``run(out_dir, quick=False) -> dict`` (validation/README.md): the
reference it is held against and one check per compared quantity (value, tolerance, unit,
passed).  The report has a summary table, one table per campaign, and PNG plots: the checks as
value/tolerance, and the curves of any ``data`` (an xarray Dataset or a dict of 1-D arrays) that a
campaign returns.  A campaign that raises, returns a malformed result, or whose ``passed`` does not
follow from its checks counts as failed.  Exits 1 if anything failed.
"""

from __future__ import annotations

import argparse
import math
import time
import traceback
from pathlib import Path

_CHECK_KEYS = ("name", "value", "tolerance", "unit", "passed")
_MAX_PLOTS_PER_FILE = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="run the smallest cases only")
    parser.add_argument("-o", "--out", type=Path, default=Path("validation-report"),
                        help="output folder for report.md, plots and campaign files (default: %(default)s)")
    parser.add_argument("--campaigns", type=Path, default=None,
                        help="folder of campaign modules (default: validation/ of the source checkout)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these campaigns")


def campaigns_dir(folder: Path | None) -> Path:
    from ..errors import InputError

    folder = folder or Path(__file__).resolve().parents[2] / "validation"
    if not folder.is_dir():
        raise InputError(f"no validation campaigns at {folder}: run from a source checkout or pass --campaigns")
    return folder


def discover(folder: Path) -> dict[str, Path]:
    """Campaign modules in ``folder``: every ``*.py`` whose name does not start with ``_``."""
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")}


def run_campaign(name: str, path: Path, out_dir: Path, quick: bool) -> dict:
    """Import and run one campaign; any failure becomes a failed result with the error."""
    import importlib.util
    import sys

    start = time.perf_counter()
    try:
        sys.path.insert(0, str(path.parent))
        try:
            spec = importlib.util.spec_from_file_location(f"cimphys_validation_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        out_dir.mkdir(parents=True, exist_ok=True)
        result = module.run(out_dir, quick=quick)
        problems = check_result(result)
    except Exception as exc:  # noqa: BLE001 - a broken campaign is a failed campaign, not a crash
        result = {"campaign": name, "reference": "-", "checks": [], "passed": False, "files": []}
        problems = [f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=-3)]
    result = dict(result)
    result["seconds"] = time.perf_counter() - start
    result["problems"] = problems
    result["ok"] = not problems and bool(result["passed"])
    return result


def check_result(result) -> list[str]:
    """What is wrong with a campaign's result dict (empty list: nothing)."""
    if not isinstance(result, dict):
        return [f"run() returned {type(result).__name__}, expected dict"]
    problems = [f"missing key {k!r}" for k in ("campaign", "reference", "checks", "passed") if k not in result]
    checks = result.get("checks", [])
    if not isinstance(checks, list) or not checks:
        return problems + ["no checks: a campaign that compares nothing validates nothing"]
    for i, check in enumerate(checks):
        missing = [k for k in _CHECK_KEYS if not isinstance(check, dict) or k not in check]
        if missing:
            problems.append(f"check {i} lacks {', '.join(missing)}")
        elif not _finite(check["value"]):
            problems.append(f"check {check['name']!r}: value {check['value']!r} is not a finite number")
    if not problems and bool(result["passed"]) != all(bool(c["passed"]) for c in checks):
        problems.append("'passed' disagrees with its checks")
    return problems


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def main(args: argparse.Namespace) -> int:
    from ..errors import InputError

    folder = campaigns_dir(args.campaigns)
    found = discover(folder)
    if args.only:
        unknown = [n for n in args.only if n not in found]
        if unknown:
            raise InputError(f"no campaign {unknown[0]!r} in {folder} (have: {', '.join(found) or 'none'})")
        found = {n: found[n] for n in args.only}
    if not found:
        raise InputError(f"no campaign modules (*.py) in {folder}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, path in found.items():
        print(f"validate {name} ...", end=" ", flush=True)
        result = run_campaign(name, path, out / name, args.quick)
        print(f"{'pass' if result['ok'] else 'FAIL'} ({result['seconds']:.1f} s)")
        for problem in result["problems"][:1]:
            print(f"  {problem}")
        results.append(result)
    report = write_report(results, out, quick=args.quick)
    failed = [r["campaign"] for r in results if not r["ok"]]
    print(f"wrote {report}; {len(results) - len(failed)} of {len(results)} campaigns passed")
    return 1 if failed else 0


# -- report ---------------------------------------------------------------------------------
def write_report(results: list[dict], out: Path, quick: bool = False) -> Path:
    """Write ``out/report.md`` (and its PNG plots) and return its path."""
    lines = ["# cimphys validation report", "",
             f"Mode: {'quick' if quick else 'full'}.  Each campaign holds a model against an outside reference.", "",
             "| campaign | reference | checks passed | result | time (s) |", "|---|---|---|---|---|"]
    for r in results:
        n_ok = sum(bool(c.get("passed")) for c in r["checks"] if isinstance(c, dict))
        lines.append(f"| [{r['campaign']}](#{_anchor(r['campaign'])}) | {_cell(r.get('reference'))} | "
                     f"{n_ok}/{len(r['checks'])} | {'pass' if r['ok'] else '**FAIL**'} | {r['seconds']:.1f} |")
    for r in results:
        lines += ["", f"## {r['campaign']}", "", f"Reference: {_cell(r.get('reference'))}", ""]
        if r["problems"]:
            lines += ["**Problems:**", "", "```", *r["problems"], "```", ""]
        if r["checks"]:
            lines += ["| check | value | tolerance | unit | result |", "|---|---|---|---|---|"]
            for c in r["checks"]:
                if isinstance(c, dict):
                    lines.append(f"| {_cell(c.get('name'))} | {_num(c.get('value'))} | {_num(c.get('tolerance'))} | "
                                 f"{_cell(c.get('unit'))} | {'pass' if c.get('passed') else '**FAIL**'} |")
        lines += [f"![{name}]({name})" for name in _plots(r, out)]
        files = [str(f) for f in r.get("files", []) or []]
        if files:
            lines += ["", "Files: " + ", ".join(f"`{f}`" for f in files)]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plots(result: dict, out: Path) -> list[str]:
    """PNG plots for one campaign, relative to ``out``; none if matplotlib is missing."""
    from ..results import replacing

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names = []
    for f in result.get("files", []) or []:  # plots the campaign drew itself
        p = Path(f)
        if p.suffix.lower() == ".png" and p.is_file():
            names.append(str(p.resolve().relative_to(out.resolve())) if p.resolve().is_relative_to(out.resolve()) else str(p))
    checks = [c for c in result["checks"] if isinstance(c, dict) and _finite(c.get("value")) and _finite(c.get("tolerance"))
              and float(c["tolerance"]) != 0]
    stem = result["campaign"]
    if checks:
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(checks) + 1.2))
        ratio = [max(abs(float(c["value"]) / float(c["tolerance"])), 1e-6) for c in checks]
        ax.barh([str(c["name"]) for c in checks], ratio, color=["tab:green" if c["passed"] else "tab:red" for c in checks])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("|value| / tolerance")
        ax.set_title(f"{stem}: checks")
        fig.tight_layout()
        with replacing(out / f"{stem}_checks.png") as tmp:
            fig.savefig(tmp, dpi=80)
        plt.close(fig)
        names.append(f"{stem}_checks.png")
    data = result.get("data")
    if data is not None:
        names += _plot_data(plt, data, out, stem)
    for f in result.get("files", []) or []:  # labelled results the campaign saved (NetCDF)
        if Path(f).suffix == ".nc" and Path(f).is_file():
            names += _plot_netcdf(plt, Path(f), out, stem)
    return names


def _plot_netcdf(plt, path: Path, out: Path, stem: str) -> list[str]:
    import xarray as xr

    try:
        with xr.open_dataset(path) as ds:
            data = ds.load()
    except Exception:  # noqa: BLE001 - an unreadable file is listed, not plotted
        return []
    one_d = [n for n, v in data.data_vars.items() if v.ndim == 1][:_MAX_PLOTS_PER_FILE]
    return _plot_data(plt, data[one_d], out, f"{stem}_{path.stem}")


def _plot_data(plt, data, out: Path, stem: str) -> list[str]:
    import numpy as np

    from ..results import replacing

    if hasattr(data, "data_vars"):  # an xarray Dataset: each 1-D variable against its coordinate
        curves = {}
        for name, var in data.data_vars.items():
            if var.ndim == 1:
                dim = var.dims[0]
                x = data[dim] if dim in data.coords else np.arange(var.size)
                xl = f"{dim} [{getattr(x, 'attrs', {}).get('units', '')}]"
                curves[name] = (np.asarray(x), np.asarray(var), xl, f"{name} [{var.attrs.get('units', '')}]")
    else:
        curves = {n: (np.arange(np.size(v)), np.asarray(v, dtype=float), "index", n)
                  for n, v in dict(data).items() if np.ndim(v) == 1}
    names = []
    for name, (x, y, xl, yl) in curves.items():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(x, y, marker=".")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(f"{stem}: {name}")
        fig.tight_layout()
        fname = f"{stem}_{name}.png"
        with replacing(out / fname) as tmp:
            fig.savefig(tmp, dpi=80)
        plt.close(fig)
        names.append(fname)
    return names


def _anchor(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.lower())


def _cell(value) -> str:
    text = str(value).replace("\\", "\\\\")
    for ch in "|*`<>":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _num(value) -> str:
    return f"{float(value):.4g}" if _finite(value) else _cell(value)
