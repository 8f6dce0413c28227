"""The tile cache: its key covers every input of a characterisation; bad entries are recomputed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.errors import CacheWarning, InputError
from cimphys.layers.characterise import cache_key, load_cached, load_ranges, save_cached, save_ranges
from cimphys.layers.config import PROGRAMMING, CimConfig
from small_cards import config

ROOT = Path(__file__).resolve().parents[3]
W = np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)


def _perturbed(value, name):
    """Values differing from ``value`` that a config field may take (tried in order)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2]
    if isinstance(value, float):
        return [value * 1.5 + 1e-9, value * 0.5, 1.0]
    if name == "programming":
        return [p for p in PROGRAMMING if p != value]
    if name == "adc_calibration":
        return ["p99.9"]
    raise AssertionError(f"no perturbation for {name} = {value!r}")


@pytest.mark.parametrize("base", [CimConfig(), CimConfig(programming="gaussian", time=3600.0)])
def test_tile_key_changes_with_every_config_field(base):
    """Perturb each layer-level field of the configuration: the key must change, so no stored
    characterisation is ever reused for inputs it was not computed from."""
    key = cache_key(W, base, 0)
    names = []
    for f in dataclasses.fields(CimConfig):
        if f.name == "card":
            continue  # the card's keys: the next test
        for candidate in _perturbed(getattr(base, f.name), f.name):
            try:
                changed = dataclasses.replace(base, **{f.name: candidate})
            except InputError:
                continue
            assert cache_key(W, changed, 0) != key, f"{f.name} does not reach the tile cache key"
            names.append(f.name)
            break
    assert set(names) == {f.name for f in dataclasses.fields(CimConfig)} - {"card"}


def test_tile_key_changes_with_every_tile_and_device_card_value(tmp_path):
    """Each value of the tile card and of the device card it names changes the key."""
    cfg = CimConfig()
    key = cache_key(W, cfg, 0)
    for name, value in cfg.card.parameters.items():
        if isinstance(value, bool):
            continue  # differential: a different layout, tested through the mapping
        new = value + 1 if isinstance(value, int) else (value * 1.01 if value else 0.5)
        changed = cfg.card.with_parameters(**{name: new})
        assert cache_key(W, cfg.with_card(changed), 0) != key, name
    for table, values in cfg.card.sections.items():
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    changed = cfg.card.with_section(table, **{name: value + 1 if isinstance(value, int) else
                                                             (value * 1.01 if value else 1e-3)})
                except ValueError:
                    continue
                assert cache_key(W, cfg.with_card(changed), 0) != key, f"{table}.{name}"
    device = tmp_path / "vteam.toml"
    card = load_device("kvatinsky2015_vteam_pickett")
    device.write_text(card.to_toml())
    with_file = cfg.with_card(cfg.card.with_section("device", card=str(device)))
    key = cache_key(W, with_file, 0)
    for name, value in card.parameters.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0:
            device.write_text(card.with_parameters(**{name: value * 1.01}).to_toml())
            assert cache_key(W, with_file, 0) != key, name


def test_tile_key_changes_with_weights_and_seed():
    cfg = CimConfig()
    key = cache_key(W, cfg, 0)
    w2 = W.copy()
    w2[0, 0] = np.nextafter(w2[0, 0], np.float32(np.inf))
    assert cache_key(w2, cfg, 0) != key
    assert cache_key(W.reshape(4, 6), cfg, 0) != key
    assert cache_key(W, cfg, 1) != key and cache_key(W, cfg, None) != key
    assert cache_key(W.astype(np.float64), cfg, 0) == key  # the mapping reads float32


def test_tile_key_covers_device_card_contents(tmp_path):
    """Regression (issue 18.4): a device card edited in place kept its key (the key held the
    card's path), so the old tiles were reused.  Checked failing before the fix (equal keys)."""
    card = tmp_path / "pcm.toml"
    text = (ROOT / "devices" / "nandakumar2019_pcm.toml").read_text()
    card.write_text(text)
    cfg = CimConfig.from_card("hermes_256x256")
    cfg = cfg.with_card(cfg.card.with_section("device", card=str(card)))
    key = cache_key(W, cfg, 0)
    card.write_text(text.replace("# S;", "# siemens;"))  # a comment: same numbers, same key
    assert cache_key(W, cfg, 0) == key
    card.write_text(text.replace("g_max = 25e-6", "g_max = 30e-6"))
    assert cache_key(W, cfg, 0) != key


def test_doctored_tile_entry_is_recomputed(tmp_path):
    """Regression (issue 18.5): an entry with its values negated was used (cosine 0.767 instead
    of 0.990).  Now it is refused with a warning naming it, and deleted."""
    sensed, row_g = np.ones((2, 3, 4)), np.arange(3.0)
    reports = {"path": np.zeros((2, 3), dtype=np.int64), "iterations": np.ones((2, 3), dtype=np.int64),
               "residual": np.full((2, 3), 1e-13), "fell_back": np.zeros((2, 3), dtype=np.int8), "time": np.ones((2, 3)),
               "checked": np.ones((2, 3), dtype=np.int8)}
    path = save_cached(tmp_path, "k", sensed, row_g, reports)
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    members["sensed"] = -members["sensed"]
    with path.open("wb") as handle:
        np.savez(handle, **members)
    with pytest.warns(CacheWarning, match=rf"{path.name}.*SHA-256"):
        assert load_cached(tmp_path, "k") is None
    assert not path.exists()


@pytest.mark.parametrize("payload", [b"", b"PK\x03\x04junk", b"\x93NUMPY junk"])
def test_damaged_tile_entry_is_a_miss_not_a_crash(tmp_path, payload):
    """Regression (issue 18.5): a truncated or empty entry raised BadZipFile/EOFError from
    load_cached, breaking every run until the folder was deleted."""
    (tmp_path / "k.npz").write_bytes(payload)
    with pytest.warns(CacheWarning, match="k.npz"):
        assert load_cached(tmp_path, "k") is None


def test_ranges_round_trip_and_damage(tmp_path):
    ranges = {("q", 0): np.array([1.0, 2.0]), ("ffn_out", 11): np.array([[3.0], [4.0]])}
    path = save_ranges(tmp_path, "r", ranges)
    got = load_ranges(tmp_path, "r")
    assert set(got) == set(ranges) and all(np.array_equal(got[k], ranges[k]) for k in ranges)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(CacheWarning, match=r"r\.ranges\.npz"):
        assert load_ranges(tmp_path, "r") is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny BERT, a batch, and a function embedding it on tiles with wires (cache in use)."""
    from cimphys.layers.engine import AnalogEngine
    from cimphys.layers.tiny import write_tiny_bert
    from cimphys.layers.transformer import BertEncoder
    from cimphys.layers import load_model

    model = BertEncoder(load_model(write_tiny_bert(tmp_path_factory.mktemp("bert"), seed=11)))
    ids = np.random.default_rng(7).integers(1, 100, size=(3, 8))
    mask = np.ones(ids.shape, dtype=np.float32)
    cfg = config(16, 16, r_wire=1.0)

    def embed(**cache):
        eng = AnalogEngine(cfg, seed=0, **cache)
        eng.calibrate(model, ids[:2], mask[:2])
        return model.pool(model.forward(ids, mask, eng)[-1], mask), eng

    return embed


@pytest.mark.slow
def test_run_with_doctored_tile_entries_matches_a_fresh_run(tiny_run, tmp_path):
    """Regression (issue 18.5), end to end: tile entries with their values negated were used
    (embedding cosine 0.767 instead of 0.990).  Now each is refused, recomputed and rewritten,
    and the run equals one without any cache."""
    fresh, _ = tiny_run(use_cache=False)
    tiny_run(cache_dir=tmp_path)
    entries = [p for p in tmp_path.glob("*.npz") if not p.name.endswith(".ranges.npz")]
    assert entries
    for path in entries:
        with np.load(path) as data:
            members = {k: data[k] for k in data.files}
        members["sensed"] = -members["sensed"]
        with path.open("wb") as handle:
            np.savez(handle, **members)
    with pytest.warns(CacheWarning, match="does not match its SHA-256"):
        again, eng = tiny_run(cache_dir=tmp_path)
    np.testing.assert_array_equal(again, fresh)
    again, eng = tiny_run(cache_dir=tmp_path)  # the rewritten entries are whole again
    assert eng.cache_hits > 0
    np.testing.assert_array_equal(again, fresh)


@pytest.mark.slow
def test_unwritable_cache_folder_runs_without_it(tiny_run, tmp_path):
    """Regression (issue 18.10): an unwritable cache folder failed the run after its work; now
    the run finishes with one warning and the same numbers."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    fresh, _ = tiny_run(use_cache=False)
    with pytest.warns(CacheWarning, match="cannot be written") as record:
        out, _ = tiny_run(cache_dir=blocker / "cache")
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    np.testing.assert_array_equal(out, fresh)
