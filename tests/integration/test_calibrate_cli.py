"""`cimphys calibrate DATA --model ...`: measured sweeps in, a fitted card with provenance out.

The data are made here from a known law with seeded noise and written as an instrument would
(units in the header, a B1500 export), so the fit has a true answer to recover.
"""

from __future__ import annotations

import numpy as np
import pytest

import cimphys
from cimphys.cli import main
from cimphys.devices.dynamics import integrate, model_from_card
from cimphys.devices.measurements import file_hash
from cimphys.devices.waveforms import pwl

NOISE = 0.01  # Gaussian current noise, fraction of the rms current


def _noisy(i, rng):
    return i + NOISE * np.sqrt(np.mean(i**2)) * rng.standard_normal(i.shape)


def test_sinh_fit_recovers_the_law_from_a_table_in_milliamps(tmp_path, capsys):
    rng = np.random.default_rng(11)
    k, a = 2e-6, 3.5
    v = np.concatenate([np.linspace(0, 1, 60), np.linspace(0, -1, 60)])
    i = _noisy(k * np.sinh(a * v), rng)
    rows = "\n".join(f"{n // 60 + 1},{float(vv)!r},{float(ii) * 1e3!r}" for n, (vv, ii) in enumerate(zip(v, i)))
    data = tmp_path / "sinh.csv"
    data.write_text(f"# two sweeps of a selector\nsweep,Voltage (V),Current (mA)\n{rows}\n")
    assert main(["calibrate", str(data), "--model", "sinh", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "2 sweep(s), 120 points" in out
    card = cimphys.load_device(tmp_path / "out" / "sinh_sinh_fitted.toml")
    # 1 % current noise on 120 points: the fit's standard errors are ~0.3 % (k) and ~0.1 % (a);
    # 2 % is several of them, and the truth must lie inside the reported 95 % interval.
    assert card["k"] == pytest.approx(k, rel=0.02) and card["a"] == pytest.approx(a, rel=0.02)
    prov = card.provenance
    assert file_hash(data) in prov["fitted"] and prov["fitted"].startswith("k, a to sinh.csv")
    for name, truth in (("k", k), ("a", a)):
        lo, hi = _ci(prov["notes"], name)
        assert lo <= truth <= hi, (name, lo, truth, hi)
    assert (tmp_path / "out" / "calibration.png").is_file()


def _ci(notes: str, name: str) -> tuple[float, float]:
    part = next(p for p in notes.split(": ", 1)[1].split("; ") if p.startswith(f"{name} = "))
    lo, hi = part.split("[")[1].rstrip("]").split(", ")
    return float(lo), float(hi)


@pytest.mark.slow
def test_yakopcic_fit_from_a_b1500_export_recovers_the_iv_parameters(tmp_path, capsys):
    """Two sine sweeps of a Yakopcic device whose a1, a2 and switching rate ap differ from the
    shipped card's, integrated by cimphys and exported as a B1500 file; the fit starts from the
    shipped card.  (b is left alone: at b V < 0.1 the card's sinh is linear, so only a1 b is
    identifiable -- fitted together, a1 and b come back with 95 % intervals spanning zero.)"""
    rng = np.random.default_rng(12)
    truth = {"a1": 0.2, "a2": 0.14, "ap": 5000.0}
    card = cimphys.load_device("yakopcic2011_oblea").with_parameters(**truth)
    lines = ["SetupTitle, I/V Sweep", "TestParameter, Channel.VName, V1"]
    t = 0.5e-3 + np.linspace(0, 1e-3, 161)
    for amp in (1.2, 1.0):
        v = amp * np.sin(2 * np.pi * (t - 0.5e-3) / 1e-3)
        i = _noisy(integrate(model_from_card(card), pwl(t, v), 0.5).current.values[:, 0], rng)
        lines += ["DataName, V1, I1, Time"] + [f"DataValue, {float(a)!r}, {float(b)!r}, {float(c)!r}" for a, b, c in zip(v, i, t)]
    data = tmp_path / "b1500.csv"
    data.write_text("\n".join(lines) + "\n")
    assert main(["calibrate", str(data), "--model", "yakopcic", "--fit", "a1,a2,ap", "--state0", "0.5",
                 "-o", str(tmp_path), "--no-plot"]) == 0
    fitted = cimphys.load_device(tmp_path / "yakopcic2011_oblea_fitted.toml")
    # 1 % noise over 322 points: standard errors ~1 %; 5 % is well outside chance.
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.05), name


def test_dynamic_model_needs_a_time_column(tmp_path, capsys):
    data = tmp_path / "iv.csv"
    data.write_text("V,I\n0,0\n0.5,1e-6\n")
    assert main(["calibrate", str(data), "--model", "vteam", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "lines 2-3 have no time column" in err and err.count("\n") == 1


def test_pcm_and_mismatched_cards_are_refused(tmp_path, capsys):
    data = tmp_path / "iv.csv"
    data.write_text("V,I\n0,0\n0.5,1e-6\n")
    assert main(["calibrate", str(data), "--model", "pcm"]) == 1
    assert "not to I-V sweeps" in capsys.readouterr().err
    assert main(["calibrate", str(data), "--model", "sinh", "--card", "yakopcic2011_oblea"]) == 1
    assert "needs 'sinh'" in capsys.readouterr().err
