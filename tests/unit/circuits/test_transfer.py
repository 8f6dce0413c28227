"""The exact transfer-matrix kernels against SuperLU unit solves, a dense nodal solve and the LU twin."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import block, nodal, transfer
from cimphys.circuits.nodal import Network
from cimphys.circuits.transfer import BlockFactor, transfer_matrix
from cimphys.errors import InputError
from dense_nodal import dense_twin

# Two exact direct solves of the same small networks (condition < 1e4) differ by rounding only:
# ~1e2 * machine epsilon * condition.
RTOL_TWIN = 1e-10
# Cholesky and LU inverses of the same well-conditioned SPD blocks: rounding only.
RTOL_CHOLESKY = 1e-11
# A 128 x 128 tile of the default card: T sits ~1e-5 below the entries of the BL blocks (wire
# conductance 0.4 S against cells of 1e-5 S), so rounding shows at ~1e-11 of max |T|.
RTOL_TILE = 1e-9

OPTIONS = [
    {},
    {"wl_drive": "both"},
    {"sense_at": "first"},
    {"wl_floating": np.array([False, True, False, False, False]), "bl_floating": np.array([False, False, True, False])},
]


def rel(x, y):
    return np.abs(np.asarray(x) - y).max() / max(np.abs(y).max(), 1e-300)


def random_network(rng, shape, **options):
    m, n = shape
    return Network.build(shape, r_wl=rng.uniform(0.1, 20, (m, n)), r_bl=rng.uniform(0.1, 20, (m, n)),
                         r_driver=rng.uniform(0.1, 50, m), r_sense=rng.uniform(0.1, 50, n), **options)


def test_nodal_reexports_the_moved_names():
    for name in ("BlockFactor", "block_eligible", "block_fits", "transfer_matrix"):
        assert getattr(nodal, name) is getattr(transfer, name)
    with pytest.raises(AttributeError):
        nodal.no_such_name  # noqa: B018


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "reference")
def test_transfer_matrix_meets_superlu_unit_solves(rng, options):
    """The one-pass Cholesky kernel (or, sensing at row 0, the factor) against M SuperLU solves."""
    net = random_network(rng, (5, 4), **options)
    a = rng.uniform(1e-5, 1e-2, (5, 4))
    want = transfer_matrix(net, a, a, method="direct")  # unit inputs through the direct path
    assert rel(transfer_matrix(net, a, a), want) < RTOL_TWIN
    assert rel(BlockFactor(net, a, a).transfer(), want) < RTOL_TWIN
    b = a * rng.uniform(0.5, 1.5, (5, 4))  # a != b: the general LU path
    assert rel(transfer_matrix(net, a, b), transfer_matrix(net, a, b, method="direct")) < RTOL_TWIN


@pytest.mark.parametrize("wires", [
    dict(r_wl=2.5, r_bl=2.5, r_sense=0.39),               # the default card: WLs driven directly
    dict(r_wl=0.0, r_bl=2.0, r_sense=1.0),                # merged WL nodes (the gathered block path)
    dict(r_wl=1.0, r_bl=1.0, r_driver=3.0),               # no sense resistance, driver resistance
])
def test_one_pass_kernel_meets_the_lu_factor(rng, wires):
    """Streamed Cholesky (two blocks kept) against the LU recursion of every block + forward sweep."""
    g = rng.uniform(1e-6, 1e-4, (37, 29))
    net = Network.build(g.shape, **wires)
    assert rel(transfer_matrix(net, g, g), _lu_transfer(net, g)) < RTOL_TILE


def test_one_pass_kernel_on_a_default_card_tile(rng):
    """A full 128 x 128 tile of the default card (1-10 uS, 2.5 ohm, TIA input 0.39 ohm)."""
    g = 1e-6 + rng.integers(0, 16, (128, 128)) * (9e-6 / 15)
    net = Network.build(g.shape, r_wl=2.5, r_bl=2.5, r_sense=0.39)
    want = _lu_transfer(net, g)
    assert rel(transfer_matrix(net, g, g), want) < RTOL_TILE
    assert np.abs(want - g.T).max() > 1e-3 * g.max()  # the IR drop is far above that


def _lu_transfer(net, g):
    """The general twin: blocks inverted by np.linalg.inv (LU), then the forward sweep."""
    bf, s, _ = _blocks(net, g)
    block._schur_recursion(s, bf.g)
    bf.sinv = s
    return bf.transfer()


def test_transfer_matrix_meets_a_dense_nodal_solve(rng):
    """Independent check: KCL of the full 2 M N node network, solved densely per WL input."""
    m, n, r = 6, 5, 3.0
    g = rng.uniform(1e-3, 1e-2, (m, n))  # large cells: the wires matter at the percent level
    net = Network.build((m, n), r_wl=r, r_bl=r, r_sense=2.0)
    zero = np.zeros((m, n))
    want = np.stack([dense_twin(net, g, g, zero, v)[2] for v in np.eye(m)], axis=1)  # 1 V on one WL
    np.testing.assert_allclose(transfer_matrix(net, g, g), want, rtol=1e-10)
    assert np.abs(want - g.T).max() > 1e-3 * g.max()  # and the wires did matter


def _blocks(net, a):
    bf = BlockFactor(net, a, a)
    m, n = net.shape
    _, _, _, diag = net.bl_couplings()
    f = bf.wlf
    s = np.empty((m, n, n))
    block._schur_blocks(a, a, f.gid, f.low, f.cp, f.ipiv, f.r_lo, f.r_hi, diag, s)
    return bf, s, diag


def _spd(bf, a, diag, s, keep, z):
    f = bf.wlf
    n = a.shape[1]
    return block._spd_recursion(a, a, f.gid, f.low, f.cp, f.ipiv, f.r_lo, f.r_hi, diag, bf.g, s, keep, z,
                                   np.empty((n, n)), block._DPOTRF, block._DPOTRI)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "reference")
def test_cholesky_recursion_matches_its_lu_twin(rng, options):
    net = random_network(rng, (5, 4), **options)
    a = rng.uniform(1e-5, 1e-2, (5, 4))
    bf, s, diag = _blocks(net, a)
    assert bf.symmetric  # a == b: the Cholesky path was taken
    s_lu, s_ch = s.copy(), s.copy()
    block._schur_recursion(s_lu, bf.g)  # the general twin: np.linalg.inv of the full blocks
    assert _spd(bf, a, diag, s_ch, True, np.empty((0, 4))) == 0
    assert rel(s_ch, s_lu) < RTOL_CHOLESKY
    assert np.array_equal(s_ch, s_ch.transpose(0, 2, 1))  # mirrored exactly
    assert np.array_equal(bf.sinv, s_ch)


@pytest.mark.parametrize("keep", [True, False], ids=["factor", "one-pass"])
def test_cholesky_recursion_reports_a_block_that_is_not_positive_definite(rng, keep):
    net = random_network(rng, (4, 3))
    a = rng.uniform(1e-5, 1e-2, (4, 3))
    bf, _, diag = _blocks(net, a)
    diag = diag.copy()
    diag[2] -= 10.0 * diag.max()  # a negative conductance to ground on every BL of row 2
    s = np.empty((4 if keep else 2, 3, 3))
    z = np.empty((0, 3)) if keep else np.eye(4, 3)
    assert _spd(bf, a, diag, s, keep, z) == 3


def test_singular_symmetric_network_is_reported_not_returned():
    # BL 1 floats and its cells are open: the one-pass Cholesky fails, the LU fallback finds it singular.
    net = Network.build((3, 4), r_wl=1.0, r_bl=1.0, bl_floating=np.array([False, True, False, False]))
    g = np.full((3, 4), 1e-5)
    g[:, 1] = 0.0
    with pytest.raises(InputError, match="singular"):
        transfer_matrix(net, g, g)
