"""Tile characterisation: T and Y against a dense nodal twin and the crossbar, and across cores
bit for bit the serial result."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.crossbar import Crossbar
from cimphys.circuits.tile_characterise import (PATHS, CharacterisationPool, Wires, characterisation_path, characterise,
                                                characterise_stack)
from cimphys.errors import InputError
from dense_nodal import dense_twin

# T and Y from exact factorisations against a dense solve: rounding only (the BL Schur blocks
# hold wire conductances ~1e5 times the cells', so ~1e-11 of max |T| shows).
RTOL_EXACT = 1e-9


def test_transfer_and_admittance_against_the_dense_twin(rng):
    g = rng.uniform(1e-6, 1e-4, (7, 5))
    wires = Wires(2.0, 3.0, 5.0, 7.0)
    t, y = characterise(g, wires)
    xb = Crossbar(g, r_wl=2.0, r_bl=3.0, r_driver=5.0, r_sense=7.0)
    v = rng.uniform(0.0, 0.3, (4, 7))
    sol = xb.solve(v)
    np.testing.assert_allclose(v @ t.T, sol.i_out, rtol=RTOL_EXACT)
    np.testing.assert_allclose(np.einsum("bm,mk,bk->b", v, y, v), sol.power()["source"].sum(axis=-1), rtol=RTOL_EXACT)
    np.testing.assert_allclose(y, y.T, rtol=0, atol=1e-12 * np.abs(y).max())
    net = wires.network(g.shape)
    twin = np.stack([dense_twin(net, g, g, np.zeros_like(g), unit)[-1] for unit in np.eye(7)])  # (input, N)
    np.testing.assert_allclose(t, twin.T, rtol=RTOL_EXACT, atol=RTOL_EXACT * np.abs(t).max())
    t_only, none = characterise(g, wires, admittance=False)
    assert none is None
    np.testing.assert_allclose(t_only, t, rtol=0, atol=RTOL_EXACT * np.abs(t).max())


def test_no_wires_is_exact_and_stacks_are_bit_identical_to_serial(rng):
    g = rng.uniform(1e-6, 1e-4, (3, 4, 5))
    t, y = characterise_stack(g, Wires())
    assert np.array_equal(t, g.transpose(0, 2, 1)) and np.array_equal(y[1], np.diag(g[1].sum(axis=1)))
    g = rng.uniform(1e-6, 1e-4, (6, 24, 16))
    wires = Wires(2.5, 2.5)
    serial = [characterise(tile, wires) for tile in g]
    for workers in (1, 3, None):
        t, y = characterise_stack(g, wires, max_workers=workers)
        assert np.array_equal(t, np.stack([s[0] for s in serial])) and np.array_equal(y, np.stack([s[1] for s in serial]))


def test_pool_collects_stacks_in_any_order_and_checks_input(rng):
    wires = Wires(2.5, 2.5)
    stacks = [rng.uniform(1e-6, 1e-4, (k, 12, 10)) for k in (3, 1, 4)]
    pool = CharacterisationPool(wires, admittance=False, max_workers=2)
    pending = [pool.submit(s) for s in stacks]
    for s, p in reversed(list(zip(stacks, pending))):
        t, y = p.result()
        assert y is None and np.array_equal(t, np.stack([characterise(tile, wires, False)[0] for tile in s]))
    pool.close()
    with pytest.raises(InputError, match="max_workers"):
        CharacterisationPool(wires, max_workers=True)
    with pytest.raises(InputError, match="g:"):
        characterise_stack(np.ones(3), wires)


def test_sense_resistance_alone_has_a_closed_form(rng):
    g = rng.uniform(1e-6, 1e-4, (9, 6))
    t, y = characterise(g, Wires(r_sense=50.0))
    v = rng.uniform(0.0, 0.3, (3, 9))
    sol = Crossbar(g, r_wl=0.0, r_bl=0.0, r_sense=50.0).solve(v)
    np.testing.assert_allclose(v @ t.T, sol.i_out, rtol=RTOL_EXACT)
    np.testing.assert_allclose(np.einsum("bm,mk,bk->b", v, y, v), sol.power()["source"].sum(axis=-1), rtol=RTOL_EXACT)


@pytest.mark.parametrize("wires", [Wires(2.0, 3.0, 5.0, 7.0), Wires(1.0, 1.0, 0.0, 0.0), Wires(0.0, 4.0, 1.0, 0.0)])
def test_wide_tiles_by_reciprocity_against_the_direct_transfer(wires, rng):
    """N > M tiles (HERMES's 256 x 512) take T from the transposed network (reciprocity): the
    direct factorisation's T to 1e-10 of max |T| (rounding of two exact factorisations), and
    the dense nodal twin's."""
    from cimphys.circuits.transfer import transfer_matrix

    g = rng.uniform(1e-6, 1e-4, (6, 13))
    t, y = characterise(g, wires, admittance=False)
    assert y is None
    direct = np.asarray(transfer_matrix(wires.network(g.shape), g, g))
    np.testing.assert_allclose(t, direct, rtol=0, atol=1e-10 * np.abs(direct).max())
    if min(wires.r_wl, wires.r_bl, wires.r_driver, wires.r_sense) > 0.0:  # the dense twin needs every resistor
        net = wires.network(g.shape)
        twin = np.stack([dense_twin(net, g, g, np.zeros_like(g), unit)[-1] for unit in np.eye(6)]).T  # (N, M)
        np.testing.assert_allclose(t, twin, rtol=0, atol=1e-10 * np.abs(twin).max())


def test_characterisation_path_names_the_exact_path_taken():
    wired = Wires(r_wl=1.0, r_bl=1.0)
    assert characterisation_path((4, 3), Wires()) == "closed_form"
    assert characterisation_path((4, 3), Wires(r_sense=10.0)) == "sense_only"
    assert characterisation_path((4, 8), wired, admittance=False) == "reciprocity"
    assert characterisation_path((8, 4), wired, admittance=False) == "transfer"
    assert characterisation_path((8, 4), wired) in ("block", "unit_solves")
    assert set(PATHS) == {"closed_form", "sense_only", "transfer", "reciprocity", "block", "unit_solves"}
