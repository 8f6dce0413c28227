"""The campaign commands end to end: `cimphys validate` on a fake campaign folder (pass, fail,
crash, malformed), `cimphys sweep` on a campaign file, `cimphys bench` on a fake benchmark."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from cimphys.cli import main
from cimphys.store import open_sweep

PASSING = '''
import numpy as np
import xarray as xr

def run(out_dir, quick=False):
    n = 8 if quick else 64
    x = np.linspace(0.0, 1.0, n)
    err = float(abs(np.trapezoid(x * x, x) - 1.0 / 3.0))  # trapezoid rule vs closed form
    (out_dir / "note.txt").write_text("written by the campaign")
    return {
        "campaign": "trapezoid",
        "reference": "closed form: integral of x^2 over [0, 1] = 1/3",
        "checks": [{"name": "abs_error", "value": err, "tolerance": 1e-2, "unit": "1", "passed": err < 1e-2}],
        "passed": err < 1e-2,
        "files": [str(out_dir / "note.txt")],
        "data": xr.Dataset({"y": (("x",), x * x, {"units": "1", "long_name": "x^2"})},
                           coords={"x": ("x", x, {"units": "1"})}),
    }
'''

FAILING = '''
def run(out_dir, quick=False):
    return {"campaign": "too_coarse", "reference": "a made-up bound",
            "checks": [{"name": "gap", "value": 0.5, "tolerance": 0.1, "unit": "V", "passed": False},
                       {"name": "fine", "value": 0.01, "tolerance": 0.1, "unit": "V", "passed": True}],
            "passed": False, "files": []}
'''

CRASHING = '''
def run(out_dir, quick=False):
    raise RuntimeError("ngspice exploded")
'''

LYING = '''
def run(out_dir, quick=False):
    return {"campaign": "liar", "reference": "x",
            "checks": [{"name": "c", "value": 2.0, "tolerance": 1.0, "unit": "1", "passed": False}],
            "passed": True, "files": []}
'''


@pytest.fixture
def folder(tmp_path):
    camp = tmp_path / "campaigns"
    camp.mkdir()
    (camp / "trapezoid.py").write_text(PASSING)
    (camp / "_helpers.py").write_text("raise ImportError('helpers are not campaigns')\n")
    return camp


def test_validate_all_passing_writes_report_with_numbers_and_plots(folder, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["validate", "--quick", "--campaigns", str(folder), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    err = abs(np.trapezoid(np.linspace(0, 1, 8) ** 2, np.linspace(0, 1, 8)) - 1 / 3)
    assert f"| abs_error | {err:.4g} | 0.01 | 1 | pass |" in report
    assert "| 1/1 | pass |" in report
    assert (out / "trapezoid_checks.png").stat().st_size > 1000
    assert (out / "trapezoid_y.png").stat().st_size > 1000
    assert "![trapezoid_y.png](trapezoid_y.png)" in report
    assert (out / "trapezoid" / "note.txt").is_file()
    assert "_helpers" not in report


@pytest.mark.parametrize(
    ("module", "expect"),
    [(FAILING, "| gap | 0.5 | 0.1 | V | **FAIL** |"), (CRASHING, "RuntimeError: ngspice exploded"),
     (LYING, "'passed' disagrees with its checks")],
)
def test_validate_fails_on_failed_crashed_or_inconsistent_campaign(folder, tmp_path, module, expect):
    (folder / "broken.py").write_text(module)
    out = tmp_path / "report"
    assert main(["validate", "--quick", "--campaigns", str(folder), "-o", str(out)]) == 1
    report = (out / "report.md").read_text()
    assert expect in report
    assert "**FAIL**" in report.split("## ")[0]  # the summary table shows it
    assert "| pass |" in report  # and the good campaign still ran and passed


def test_validate_only_and_bad_folder(folder, tmp_path, capsys):
    (folder / "broken.py").write_text(CRASHING)
    assert main(["validate", "--only", "trapezoid", "--campaigns", str(folder), "-o", str(tmp_path / "r")]) == 0
    assert main(["validate", "--only", "nope", "--campaigns", str(folder), "-o", str(tmp_path / "r")]) == 1
    assert "no campaign 'nope'" in capsys.readouterr().err
    assert main(["validate", "--campaigns", str(tmp_path / "missing")]) == 1


def test_sweep_command_runs_resumes_and_protects_the_store(tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text(textwrap.dedent("""
        [campaign]
        name = "cli"
        [model]
        function = "crossbar_adc"
        parameters = { rows = 4, cols = 3, batch = 2 }
        [axes]
        r_wire = [0.5, 1.0, 2.0]
        adc_bits = [4, 6]
    """))
    store = tmp_path / "s.zarr"
    args = ["sweep", str(toml), "--store", str(store), "--scheduler", "serial", "--no-progress"]
    assert main(args + ["-o", str(tmp_path / "s.nc")]) == 0
    first = open_sweep(store)
    assert first.rel_error_rms.shape == (3, 2) and (tmp_path / "s.nc").is_file()
    assert main(args) == 0  # resumes a finished store: same numbers
    np.testing.assert_array_equal(open_sweep(store).rel_error_rms.values, first.rel_error_rms.values)
    toml.write_text(toml.read_text().replace('name = "cli"', 'name = "cli"\nseed = 1'))
    assert main(args) == 1
    assert "another sweep" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert not np.array_equal(open_sweep(store).rel_error_rms.values, first.rel_error_rms.values)
    toml.write_text(toml.read_text().replace("[axes]", "[axis]"))
    assert main(args) == 1
    assert "did you mean 'axes'" in capsys.readouterr().err
    toml.write_text(toml.read_text().replace("[axis]", "[axes]").replace('"crossbar_adc"', '"os:system"'))
    assert main(args) == 1
    assert "not a registered model" in capsys.readouterr().err


def test_bench_command_runs_a_benchmark_folder(tmp_path, capsys):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    from pathlib import Path

    common = Path(__file__).resolve().parents[2] / "benchmarks" / "_common.py"
    (bench / "_common.py").write_text(common.read_text())
    (bench / "bench_toy.py").write_text(textwrap.dedent("""
        from _common import Record
        def run(quick=False):
            return [Record("toy", 1.0, "peer", 3.0, "s", target=2.0)]
    """))
    assert main(["bench", "--dir", str(bench), "--json", str(tmp_path / "b.json")]) == 0
    assert "toy" in capsys.readouterr().out and (tmp_path / "b.json").is_file()
    assert main(["bench", "nope", "--dir", str(bench)]) == 1
    assert main(["bench", "--dir", str(tmp_path)]) == 1
    assert "source checkout" in capsys.readouterr().err


def test_report_escapes_markdown_and_plots_saved_netcdf(folder, tmp_path):
    (folder / "banner.py").write_text(textwrap.dedent('''
        import numpy as np
        import xarray as xr

        def run(out_dir, quick=False):
            t = np.linspace(0.0, 1.0, 5)
            ds = xr.Dataset({"v": (("t",), t ** 2, {"units": "V", "long_name": "v"})},
                            coords={"t": ("t", t, {"units": "s"})})
            ds.to_netcdf(out_dir / "wave.nc")
            return {"campaign": "banner", "reference": "****** tool | v1",
                    "checks": [{"name": "c", "value": 0.0, "tolerance": 1.0, "unit": "1", "passed": True}],
                    "passed": True, "files": [str(out_dir / "wave.nc")]}
    '''))
    out = tmp_path / "report"
    assert main(["validate", "--only", "banner", "--campaigns", str(folder), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "\\*\\*\\*\\*\\*\\* tool \\| v1" in report
    assert (out / "banner_wave_v.png").is_file() and "![banner_wave_v.png](banner_wave_v.png)" in report
