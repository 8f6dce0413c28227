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


@pytest.mark.parametrize("wires", [
    dict(r_wl=2.5, r_bl=2.5, r_sense=0.39),               # the default card: WLs driven directly
    dict(r_wl=0.0, r_bl=2.0, r_sense=1.0),                # merged WL nodes (the gathered block path)
    dict(r_wl=1.0, r_bl=1.0, r_driver=3.0),               # no sense resistance, driver resistance
])
def test_fused_tile_transfer_is_the_circuit_layers_transfer_matrix(rng, wires):
    from cimphys.circuits.nodal import Network, transfer_matrix

    cfg = CimConfig(**wires)
    g = rng.uniform(1e-6, 1e-4, (37, 29))
    net = Network.build(g.shape, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense)
    want = transfer_matrix(net, g, g).T
    got = tile_transfer(g, cfg)
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL_TRANSFER * np.abs(want).max())


def test_fused_tile_transfer_on_a_default_card_tile(rng):
    """A full 128 x 128 tile of the default card (1-10 uS, 2.5 ohm, TIA input 0.39 ohm)."""
    from cimphys.circuits.nodal import Network, transfer_matrix

    cfg = CimConfig(r_wl=2.5, r_bl=2.5, r_sense=0.39)
    g = 1e-6 + rng.integers(0, 16, (128, 128)) * (9e-6 / 15)
    net = Network.build(g.shape, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_sense=cfg.r_sense)
    want = transfer_matrix(net, g, g).T
    err = np.abs(tile_transfer(g, cfg) - want).max() / np.abs(want).max()
    assert err < RTOL_TRANSFER
    assert np.abs(want - g).max() > 1e-3 * g.max()  # the IR drop is far above that


def test_fused_tile_transfer_meets_a_dense_nodal_solve(rng):
    """Independent check: KCL of the full 2 M N node network, solved densely per WL input."""
    m, n, r = 6, 5, 3.0
    g = rng.uniform(1e-3, 1e-2, (m, n))  # large cells: the wires matter at the percent level
    cfg = CimConfig(r_wl=r, r_bl=r, r_sense=2.0)

    def wl(i, j):  # WL node (i, j); the BL nodes follow all WL nodes
        return i * n + j

    def bl(i, j):
        return m * n + i * n + j

    a = np.zeros((2 * m * n, 2 * m * n))

    def stamp(p, q, cond):
        a[p, p] += cond
        if q is not None:
            a[q, q] += cond
            a[p, q] -= cond
            a[q, p] -= cond

    for i in range(m):
        for j in range(n):
            stamp(wl(i, j), bl(i, j), g[i, j])
            if j + 1 < n:
                stamp(wl(i, j), wl(i, j + 1), 1 / r)
            if i + 1 < m:
                stamp(bl(i, j), bl(i + 1, j), 1 / r)
    for j in range(n):  # last row's BL node -> r_bl -> r_sense -> virtual ground
        stamp(bl(m - 1, j), None, 1 / (r + 2.0))
    want = np.empty((m, n))
    for k in range(m):  # WL k's source (1 V, no driver resistance) -> r_wl -> node (k, 0)
        rhs = np.zeros(2 * m * n)
        rhs[wl(k, 0)] = 1 / r
        aa = a.copy()
        aa[wl(k, 0), wl(k, 0)] += 1 / r
        for i in range(m):
            if i != k:
                aa[wl(i, 0), wl(i, 0)] += 1 / r  # the other sources are held at 0 V
        v = np.linalg.solve(aa, rhs)
        want[k] = v[[bl(m - 1, j) for j in range(n)]] / (r + 2.0)
    np.testing.assert_allclose(tile_transfer(g, cfg), want, rtol=1e-10)
    assert np.abs(want - g).max() > 1e-3 * g.max()  # and the wires did matter


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
