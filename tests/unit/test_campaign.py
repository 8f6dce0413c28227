"""Campaign files: strict parsing with suggestions, axes forms, fingerprints, running."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cimphys.campaign import load_campaign, resolve_function
from cimphys.errors import InputError

ROOT = Path(__file__).resolve().parents[2]



def power(v, r, scale=1.0, rng=None):
    """The user's own model, handed over from Python (a campaign file cannot import one)."""
    return xr.Dataset({
        "p": ((), scale * v * v / r, {"units": "W", "long_name": "power"}),
        "i": ((), v / r, {"units": "A", "long_name": "current"}),
        "noise": ((), rng.normal(), {"units": "1", "long_name": "noise"}),
    })


MODELS = {"power": power}

GOOD = """
[campaign]
name = "power"
seed = 3

[model]
function = "power"
parameters = { scale = 2.0 }

[axes]
v = [0.1, 0.2]
r = { start = 10.0, stop = 1000.0, num = 3, scale = "log" }

[metrics]
names = ["p", "noise"]
"""


@pytest.fixture
def model(tmp_path):
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_campaign_runs_and_keeps_metrics(model):
    camp = load_campaign(_write(model, GOOD), models=MODELS)
    assert camp.axes["r"] == pytest.approx((10.0, 100.0, 1000.0))
    ds = camp.run(scheduler="serial")
    assert set(ds.data_vars) == {"p", "noise"}
    np.testing.assert_allclose(ds.p.values, 2.0 * np.divide.outer([0.01, 0.04], [10.0, 100.0, 1000.0]), rtol=1e-15)
    assert ds.p.attrs["units"] == "W"
    assert ds.attrs["campaign"] == "power"


def test_store_from_file_resumes_and_parameters_enter_fingerprint(model, monkeypatch):
    monkeypatch.chdir(model)
    path = _write(model, GOOD + '\n[store]\npath = "out/power.zarr"\n')
    first = load_campaign(path, models=MODELS).run(scheduler="serial")
    assert (model / "out" / "power.zarr").is_dir()
    again = load_campaign(path, models=MODELS).run(scheduler="serial")  # resumes: nothing left to compute
    np.testing.assert_array_equal(first.noise.values, again.noise.values)
    path.write_text(path.read_text().replace("scale = 2.0", "scale = 3.0"))
    with pytest.raises(InputError, match="another sweep"):
        load_campaign(path, models=MODELS).run(scheduler="serial")


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
        (('"power"\n', '"powr"\n'), r"'powr' is not a registered model \(did you mean 'power'\?\)"),
        (('"power"\n', '"crossbar_adx"\n'), r"did you mean 'crossbar_adc'"),
        (('names = ["p", "noise"]', 'names = ["p", "energy"]'), r"metrics \['energy'\] not among"),
        (("[axes]", "[axes]\nbad = 'x'"), "axes.bad: expected a list"),
    ],
)
def test_typos_fail_with_suggestions(model, edit, match):
    path = _write(model, GOOD.replace(*edit))
    with pytest.raises(InputError, match=match):
        load_campaign(path, models=MODELS).run(scheduler="serial")


@pytest.mark.parametrize("spec", ["os:system", "subprocess:run", "builtins:exec", "cimphys.campaign:crossbar_adc"])
def test_campaign_file_cannot_name_code_to_run(model, monkeypatch, spec):
    """Regression (issue 18.1): ``function = "os:system"`` with an axis of shell commands ran them.

    Failed before the fix (the dotted name was imported and called; ``id`` wrote its file)."""
    monkeypatch.chdir(model)
    text = f'''
    [campaign]
    name = "x"
    [model]
    function = "{spec}"
    [axes]
    command = ["echo pwned > pwned.txt"]
    '''
    with pytest.raises(InputError, match=r"not a registered model.*models=\{'name': fn\}"):
        load_campaign(_write(model, text)).run(scheduler="serial")
    assert not (model / "pwned.txt").exists()


def card_scale(x, device_card):
    """A model reading one value of its device card (for the fingerprint test)."""
    return xr.Dataset({"y": ((), x * device_card["g_max"], {"units": "S", "long_name": "x times g_max"})})


def test_card_edited_in_place_is_not_resumed(tmp_path, monkeypatch):
    """Regression (issue 18.3): the fingerprint held card paths, so after a card file was edited
    the rerun resumed the old store and returned the old numbers.  Failed before the fix (the
    second run returned 25e-6 from the store instead of raising)."""
    monkeypatch.chdir(tmp_path)
    card = tmp_path / "my_pcm.toml"
    card.write_text((ROOT / "devices" / "nandakumar2019_pcm.toml").read_text())
    text = f'''
    [campaign]
    name = "cards"
    [model]
    function = "card_scale"
    [card]
    device = "{card}"
    [axes]
    x = [1.0]
    [store]
    path = "out.zarr"
    '''
    path = _write(tmp_path, text)
    first = load_campaign(path, models={"card_scale": card_scale}).run(scheduler="serial")
    assert first.y.item() == pytest.approx(25e-6, rel=1e-15)
    comment_only = card.read_text().replace("# S;", "# siemens;")  # same numbers: still resumes
    card.write_text(comment_only)
    again = load_campaign(path, models={"card_scale": card_scale}).run(scheduler="serial")
    assert again.y.item() == first.y.item()
    card.write_text(comment_only.replace("g_max = 25e-6", "g_max = 30e-6"))
    with pytest.raises(InputError, match="another sweep"):
        load_campaign(path, models={"card_scale": card_scale}).run(scheduler="serial")


def test_models_mapping_is_checked():
    with pytest.raises(InputError, match="already a built-in model"):
        load_campaign("none.toml", models={"crossbar_adc": power})
    with pytest.raises(InputError, match="mapping of names to functions"):
        load_campaign("none.toml", models={"x": 3})


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
