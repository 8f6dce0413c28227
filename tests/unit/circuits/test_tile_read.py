"""The tile read's kernels against their NumPy twins: the fused noise + sense pass bit for bit,
the float32 array product within its stated rounding bound."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits.sense import ChargeIntegrator, LoadResistor, TIA
from cimphys.circuits.tile_read import per_tile_product, sense_reads, sense_reads_numpy

U32 = 2.0**-24  # unit roundoff of float32


@pytest.mark.parametrize("sense", [
    TIA(r_f=3.9e3, gain=1e4, v_swing=0.3),
    ChargeIntegrator(c_int=1e-12, t_int=1e-8, v_swing=0.3),
    LoadResistor(r_load=2e4, v_swing=0.3),
])
@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_sense_pass_is_its_numpy_twin_bit_for_bit(sense, noisy, dtype, rng):
    """Same float64 operations in the same order: identical currents, outputs and clipping,
    with per-channel offsets, cell noise (normals made in the kernel from each tile's key),
    amplifier noise and outputs beyond the swing, from float64 or float32 array products."""
    nt, nb, nc = 3, 40, 5
    import dataclasses

    sense = dataclasses.replace(sense, offset_v=rng.normal(0.0, 2e-3, nt * nc))
    i = rng.normal(0.0, 5e-5, (nt, nb, nc)).astype(dtype)
    var = (rng.uniform(0.0, 1e-12, (nt, nb, nc)).astype(dtype), rng.uniform(0.0, 1e-13, (nt, nc))) if noisy else None
    keys = rng.integers(0, 2**64, nt, dtype=np.uint64) if noisy else None
    sn = rng.normal(0.0, 1e-3, (nb, nt * nc)) if noisy else None
    g_src = rng.uniform(0.0, 1e-3, nt * nc)
    got = sense_reads(i, var, keys, sense, g_src, sn)
    want = sense_reads_numpy(i, var, keys, sense, g_src, sn)
    assert got[2].any() and not got[2].all()  # some outputs clip, some do not
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_float32_product_within_its_rounding_bound(rng):
    """|i32 - i64| <= (M + 2) u sum |v| |a| (Higham eq. 3.5 plus the rounding of both operands),
    and far below an ADC LSB: for a full 128-row column of g_max cells, < 1e-5 of its current."""
    nt, nb, m, c = 4, 50, 128, 127
    v = (rng.random((1, nb, m)) < 0.5) * 0.2  # binary drives, as bit-serial DACs give
    a = rng.uniform(-1e-5, 1e-5, (nt, c, m))
    i64 = per_tile_product(v, a, nt, np.float64)
    i32 = per_tile_product(v, a, nt, np.float32).astype(np.float64)
    bound = (m + 2) * U32 * np.einsum("bm,tcm->tbc", np.abs(v[0]), np.abs(a))
    assert np.all(np.abs(i32 - i64) <= bound)
    full = m * 1e-5 * 0.2
    assert np.max(np.abs(i32 - i64)) < 1e-5 * full
    per = per_tile_product(np.repeat(v, nt, axis=0), a, nt, np.float64)  # one drive per tile
    np.testing.assert_array_equal(per, i64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_is_the_same_for_any_number_of_workers(dtype, rng):
    """Each tile's product runs on one BLAS thread, so the numbers do not depend on how many
    threads share the tiles (a multi-threaded BLAS changed float32 sums in their last bits with
    its thread count): exactly equal for 1, 2 and 3 workers, and to NumPy's product of a tile
    alone on one BLAS thread."""
    from cimphys.circuits.tile_read import _blas_threads_local

    nt, nb, m, c = 5, 300, 128, 127
    v = (rng.random((1, nb, m)) < 0.5) * 0.2
    a = rng.uniform(0.0, 1e-5, (nt, c, m))
    got = [per_tile_product(v, a, nt, dtype, workers=w) for w in (1, 2, 3)]
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], got[2])
    limit = _blas_threads_local()
    if limit is not None:
        before = limit(1)
        try:
            want = v[0].astype(dtype) @ a[2].astype(dtype).T
        finally:
            limit(before)
        np.testing.assert_array_equal(got[1][2], want)


def _child_product(_):
    v, a = np.full((1, 20, 16), 0.2), np.full((3, 5, 16), 1e-5)
    return per_tile_product(v, a, 3, workers=2)


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork (POSIX)")
def test_a_forked_child_gets_its_own_product_threads():
    """Regression: the product's thread pool is made per process; a child forked after the parent
    made one (sweeps fork workers) would otherwise wait forever on threads it does not have."""
    import multiprocessing

    want = _child_product(0)  # the parent's pool exists from here on
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.map_async(_child_product, [0]).get(timeout=60)[0]
    np.testing.assert_array_equal(got, want)
