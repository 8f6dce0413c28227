"""Campaign files: strict parsing with suggestions, axes forms, fingerprints, running."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from cimphys.campaign import load_campaign, resolve_function
from cimphys.errors import InputError

ROOT = Path(__file__).resolve().parents[2]

MODEL = '''
import xarray as xr

def power(v, r, scale=1.0, rng=None):
    return xr.Dataset({
        "p": ((), scale * v * v / r, {"units": "W", "long_name": "power"}),
        "i": ((), v / r, {"units": "A", "long_name": "current"}),
        "noise": ((), rng.normal(), {"units": "1", "long_name": "noise"}),
    })
'''

GOOD = """
[campaign]
name = "power"
seed = 3

[model]
function = "campaign_model_h7:power"
parameters = { scale = 2.0 }

[axes]
v = [0.1, 0.2]
r = { start = 10.0, stop = 1000.0, num = 3, scale = "log" }

[metrics]
names = ["p", "noise"]
"""


@pytest.fixture
def model(tmp_path, monkeypatch):
    (tmp_path / "campaign_model_h7.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_campaign_runs_and_keeps_metrics(model):
    camp = load_campaign(_write(model, GOOD))
    assert camp.axes["r"] == pytest.approx((10.0, 100.0, 1000.0))
    ds = camp.run(scheduler="serial")
    assert set(ds.data_vars) == {"p", "noise"}
    np.testing.assert_allclose(ds.p.values, 2.0 * np.divide.outer([0.01, 0.04], [10.0, 100.0, 1000.0]), rtol=1e-15)
    assert ds.p.attrs["units"] == "W"
    assert ds.attrs["campaign"] == "power"


def test_store_from_file_resumes_and_parameters_enter_fingerprint(model, monkeypatch):
    monkeypatch.chdir(model)
    path = _write(model, GOOD + '\n[store]\npath = "out/power.zarr"\n')
    first = load_campaign(path).run(scheduler="serial")
    assert (model / "out" / "power.zarr").is_dir()
    again = load_campaign(path).run(scheduler="serial")  # resumes: nothing left to compute
    np.testing.assert_array_equal(first.noise.values, again.noise.values)
    path.write_text(path.read_text().replace("scale = 2.0", "scale = 3.0"))
    with pytest.raises(InputError, match="another sweep"):
        load_campaign(path).run(scheduler="serial")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (("[metrics]", "[metric]"), r"unknown table \[metric\] \(did you mean 'metrics'\?\)"),
        (("seed = 3", "sede = 3"), r"unknown key campaign.sede \(did you mean 'seed'\?\)"),
        (("seed = 3", "seed = 'x'"), "campaign.seed: expected int"),
        (("seed = 3", "seed = -1"), "seed: expected an int >= 0"),
        (('name = "power"', ""), r"missing key campaign.name"),
        (("scale = \"log\"", "scale = \"ln\""), "scale: expected 'linear' or 'log'"),
        (("num = 3", "nun = 3"), r"unknown key 'nun' \(did you mean 'num'\?\)"),
        (("v = [0.1, 0.2]", "vv = [0.1, 0.2]"), r"axes.vv: .* takes no argument 'vv'; did you mean 'v'"),
        (("scale = 2.0", "scael = 2.0"), r"model.parameters.scael.*did you mean 'scale'"),
        (("campaign_model_h7:power", "campaign_model_h7:powr"), "has no function 'powr'"),
        (("campaign_model_h7:power", "crossbar_adx"), r"did you mean 'crossbar_adc'"),
        (('names = ["p", "noise"]', 'names = ["p", "energy"]'), r"metrics \['energy'\] not among"),
        (("[axes]", "[axes]\nbad = 'x'"), "axes.bad: expected a list"),
    ],
)
def test_typos_fail_with_suggestions(model, edit, match):
    path = _write(model, GOOD.replace(*edit))
    with pytest.raises(InputError, match=match):
        load_campaign(path).run(scheduler="serial")


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="no such campaign"):
        load_campaign(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_campaign(bad)


def test_shipped_campaigns_parse_and_name_real_arguments():
    for path in sorted((ROOT / "campaigns").glob("*.toml")):
        camp = load_campaign(path)
        camp._check_signature(resolve_function(camp.function))
        assert camp.n_points >= 1


def test_campaign_with_cards_runs_a_point(tmp_path):
    """The shipped PCM campaign, cut to one point and a small array: cards reach the model."""
    text = (ROOT / "campaigns" / "pcm_tile_drift.toml").read_text()
    text = text.replace("rows = 64, cols = 32, n_tiles = 8, batch = 32", "rows = 8, cols = 4, n_tiles = 1, batch = 4")
    text = text.replace('t_inference = { start = 20.0, stop = 3.15e7, num = 6, scale = "log" }', "t_inference = [3600.0]")
    text = text.replace("adc_bits = [6, 8]", "adc_bits = [8]")
    path = tmp_path / "c.toml"
    path.write_text(text)
    ds = load_campaign(path).run(store=tmp_path / "s.zarr", scheduler="serial")
    assert ds.error_std.shape == (1, 1) and ds.error_std.item() > 0
    assert 1.0 < ds.alpha.item() < 1.5  # drift lowers the reads; compensation scales them back up
