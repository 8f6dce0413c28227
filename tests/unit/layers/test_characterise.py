"""Tile characterisation across cores: the same bits as one tile at a time."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers import CimConfig
from cimphys.layers.characterise import RTOL_TRANSFER, tile_transfer, tile_transfers


def test_parallel_characterisation_is_bit_identical_to_serial(rng):
    cfg = CimConfig(r_wl=2.5, r_bl=2.5)
    g = rng.uniform(1e-6, 1e-4, (2, 3, 24, 16))  # 6 tiles, in a lead shape like (rb, cb, s)
    serial = np.stack([tile_transfer(t, cfg) for t in g.reshape(-1, 24, 16)]).reshape(g.shape)
    assert np.array_equal(tile_transfers(g, cfg, max_workers=1), serial)
    assert np.array_equal(tile_transfers(g, cfg, max_workers=3), serial)
    assert np.array_equal(tile_transfers(g, cfg), serial)  # default workers
    assert not np.array_equal(serial, g)  # the wires do change T


def test_tile_transfers_without_wires_and_bad_input(rng):
    g = rng.uniform(1e-6, 1e-4, (3, 4, 5))
    assert np.array_equal(tile_transfers(g, CimConfig()), g)  # no wires: T = G exactly
    with pytest.raises(InputError, match="max_workers"):
        tile_transfers(g, CimConfig(r_wl=1.0, r_bl=1.0), max_workers=0)
    with pytest.raises(InputError, match="g:"):
        tile_transfers(np.ones(3), CimConfig())


def test_tile_transfer_is_the_crossbar_transfer_matrix(rng):
    from cimphys.circuits.crossbar import Crossbar

    cfg = CimConfig(r_wl=2.0, r_bl=3.0, r_driver=5.0, r_sense=7.0)
    g = rng.uniform(1e-6, 1e-4, (20, 12))
    xb = Crossbar(g, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense)
    want = xb.transfer_matrix().T
    np.testing.assert_allclose(tile_transfer(g, cfg), want, rtol=0, atol=RTOL_TRANSFER * np.abs(want).max())


def test_tile_pool_collects_matrices_in_any_order(rng):
    from cimphys.layers.characterise import TilePool

    cfg = CimConfig(r_wl=2.5, r_bl=2.5)
    stacks = [rng.uniform(1e-6, 1e-4, (k, 12, 10)) for k in (3, 1, 4)]
    pool = TilePool(cfg, max_workers=2)
    pending = [pool.submit(s) for s in stacks]
    import numba

    # the tile kernels launch no parallel kernel: the pool must start the threading layer itself
    assert pool.workers == 2 or numba.threading_layer() == "workqueue"
    assert pending[0].futures is not None or pool.workers == 1
    for s, p in reversed(list(zip(stacks, pending))):
        assert np.array_equal(p.result(), np.stack([tile_transfer(t, cfg) for t in s]))
    pool.close()
    with pytest.raises(InputError, match="max_workers"):
        TilePool(cfg, max_workers=True)
