"""The disk cache of a device card's write-verify statistics: exact round trip, a key over every input."""

from __future__ import annotations

import numpy as np
import pytest

import cimphys.devices.programming_statistics as ps
from cimphys.cards import load_device
from cimphys.devices.cell_array import CellArrayModel
from cimphys.errors import CacheWarning
from cimphys.layers.characterise import cached_device_statistics

CARD = "kvatinsky2015_vteam_pickett"  # the default tile card's device: VTEAM, write-verified
INPUTS = dict(g_min=1e-6, g_max=1e-5, v_read=0.2, bandwidth=5e6, temperature=None, seed=0)


@pytest.fixture(scope="module")
def card():
    return load_device(CARD)


@pytest.fixture
def counted(monkeypatch):
    """Count the Monte-Carlo runs the cache asks for."""
    calls = []
    real = ps.device_statistics

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ps, "device_statistics", counting)
    return calls


def test_stored_statistics_program_cells_exactly_as_fresh_ones(card, counted, tmp_path):
    """A run from the cache programs every cell as a run without it, bit for bit: same
    conductances, pulse counts, write energies and times for the same seeded targets."""
    fresh = cached_device_statistics(tmp_path, card, **INPUTS)
    stored = cached_device_statistics(tmp_path, card, **INPUTS)
    assert len(counted) == 1 and len(list(tmp_path.glob("*.stats.npz"))) == 1
    assert stored.params == fresh.params and stored.notes == fresh.notes
    assert stored.window == fresh.window and stored.bounds == fresh.bounds
    kw = {k: v for k, v in INPUTS.items()}
    a, b = (CellArrayModel.from_card(card, statistics=s, **kw) for s in (fresh, stored))
    targets = np.random.default_rng(3).uniform(1e-6, 1e-5, (3, 16, 8))
    pa, pb = a.program(targets, np.random.default_rng(7)), b.program(targets, np.random.default_rng(7))
    for name in ("g", "pulses", "write_energy", "write_time"):
        np.testing.assert_array_equal(getattr(pa, name), getattr(pb, name))
    # the exports' draw from the rebuilt sampler matches too
    lv = np.linspace(0.0, 1.0, 50)
    np.testing.assert_array_equal(fresh.sample(lv, np.random.default_rng(1))[0],
                                  stored.sample(lv, np.random.default_rng(1))[0])


@pytest.mark.slow
def test_statistics_key_changes_with_every_input(card, counted, tmp_path):
    """Each input of the Monte-Carlo changed alone gives an entry of its own (a new run), the
    same inputs again none: a stored table never stands in for inputs it was not made from."""
    cached_device_statistics(tmp_path, card, **INPUTS)
    changes = [dict(seed=1), dict(temperature=320.0), dict(g_min=2e-6), dict(g_max=2e-5), dict(v_read=0.25),
               dict(bandwidth=1e7)]
    for change in changes:
        cached_device_statistics(tmp_path, card, **{**INPUTS, **change})
    other = card.with_section("variability", c2c_sigma=0.05)  # the card's content, same name
    cached_device_statistics(tmp_path, other, **INPUTS)
    cached_device_statistics(tmp_path, card, **INPUTS)
    assert len(counted) == len(changes) + 2
    assert len(list(tmp_path.glob("*.stats.npz"))) == len(changes) + 2


def test_doctored_statistics_entry_is_recomputed(card, counted, tmp_path):
    """An entry whose errors were edited is refused (warning naming it), deleted and recomputed."""
    cached_device_statistics(tmp_path, card, **INPUTS)
    path = next(tmp_path.glob("*.stats.npz"))
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    members["error"] = members["error"] * 0.0
    with path.open("wb") as handle:
        np.savez(handle, **members)
    with pytest.warns(CacheWarning, match=path.name):
        again = cached_device_statistics(tmp_path, card, **INPUTS)
    assert len(counted) == 2 and np.any(again.table["error"] != 0.0)


def test_pcm_statistics_are_not_stored(tmp_path):
    """PCM statistics are closed-form (no Monte-Carlo): nothing to cache."""
    assert cached_device_statistics(tmp_path, load_device("nandakumar2019_pcm"), **INPUTS) is None
    assert not list(tmp_path.iterdir())
