"""Mapping arithmetic, the ADC/shift-add kernel against its naive twin, tile characterisation."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers.analog import AnalogMatrix, adc_shift_add
from cimphys.layers.characterise import tile_transfer
from cimphys.layers.config import CimConfig
from cimphys.layers.mapping import Mapping, input_digits, map_matrix, quantise_inputs, quantise_weights

# The kernel and its twin do the same float64 arithmetic in a different order: a code can flip
# only when a current sits within rounding of a decision level, which random data never hits.
RTOL_KERNEL = 1e-9


def _reassemble(mm):
    """Integer weights back from the cell digits (plain loops over tiles)."""
    m = mm.mapping
    rb, cb = mm.digits.shape[:2]
    wc = m.weight_cols
    full = np.zeros((rb * m.rows, cb * wc), dtype=np.int64)
    for r in range(rb):
        for c in range(cb):
            for s in range(m.n_slices):
                d = mm.digits[r, c, s].astype(np.int64) << (s * m.cell_bits)
                block = full[r * m.rows:(r + 1) * m.rows, c * wc:(c + 1) * wc]
                if m.sign == "differential":
                    block += d[:, 0:2 * wc:2] - d[:, 1:2 * wc:2]
                else:
                    block += d[:, :wc]
                    assert np.all(mm.digits[r, c, s][:, -1] == 2 ** (m.cell_bits - 1))  # mid-level reference
    if m.sign == "offset":
        full -= 2 ** (m.n_slices * m.cell_bits - 1)
    k, n = mm.shape
    return full[:k, :n]


@pytest.mark.parametrize("sign", ["differential", "offset"])
@pytest.mark.parametrize("shape", [(5, 3), (37, 29), (64, 16)])
def test_digits_reassemble_integer_weights(rng, sign, shape):
    m = Mapping(rows=16, cols=10, cell_bits=3, n_slices=2, sign=sign)
    w = rng.standard_normal(shape)
    mm = map_matrix(w, m)
    assert np.array_equal(_reassemble(mm), mm.q)
    assert mm.digits.max() <= 2**m.cell_bits - 1
    q, scale = quantise_weights(w, m)
    assert np.all(np.abs(q * scale - w) <= scale / 2 + 1e-15)
    assert mm.n_tiles == np.prod(m.grid(*shape)) * m.n_slices
    assert 0 < mm.utilisation <= 1


def test_input_digits_reassemble(rng):
    m = Mapping(input_bits=7, dac_bits=2)
    p, scale = quantise_inputs(rng.standard_normal((4, 9)) * 3, m.input_bits)
    d = input_digits(p, m)
    back = sum(d[0, r] * 2 ** (2 * r) - d[1, r] * 2 ** (2 * r) for r in range(m.reads_per_phase))
    assert np.array_equal(back, p)
    assert np.abs(p).max() <= 2 ** (m.input_bits - 1) - 1


def naive_adc_shift_add(i_sense, noise, fs, read_w, slice_w, bits, unit, gain, offset, vsum):
    n_p, n_r, n_b, n_cb, n_s, n_w = i_sense.shape
    out = np.zeros((n_b, n_cb * n_w))
    top, bottom = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    for b in range(n_b):
        for cb in range(n_cb):
            for s in range(n_s):
                for j in range(n_w):
                    if fs[cb, s, j] <= 0:
                        continue
                    lsb = fs[cb, s, j] / top
                    for p in range(n_p):
                        for r in range(n_r):
                            cur = float(i_sense[p, r, b, cb, s, j])
                            if noise is not None:
                                cur += float(noise[p, r, b, cb, s, j])
                            code = min(max(np.floor(cur / lsb + 0.5), bottom), top)
                            est = code * lsb - offset[cb, s, j] * vsum[p, r, b]
                            out[b, cb * n_w + j] += read_w[p, r] * est * slice_w[s] / unit / gain[cb, s, j]
    return out


def test_kernel_matches_naive_twin(rng):
    shape = (2, 3, 4, 2, 2, 5)
    i_sense = rng.uniform(-1e-5, 1e-5, shape).astype(np.float32)
    noise = (rng.standard_normal(shape) * 1e-7).astype(np.float32)
    fs = rng.uniform(2e-6, 8e-6, (2, 2, 5))  # below the largest currents: clipping is exercised
    fs[1, :, 1] = 0.0  # an unused column stays zero
    read_w = rng.standard_normal((2, 3))
    slice_w = np.array([1.0, 16.0])
    gain = rng.uniform(0.8, 1.0, fs.shape)
    offset = rng.uniform(-1e-6, 1e-6, fs.shape)
    vsum = rng.uniform(0, 3, shape[:3])
    for nz in (None, noise):
        ours = adc_shift_add(i_sense, nz, fs, read_w, slice_w, 5, 1e-7, gain=gain, offset=offset, vsum=vsum)
        ref = naive_adc_shift_add(i_sense, nz, fs, read_w, slice_w, 5, 1e-7, gain, offset, vsum)
        np.testing.assert_allclose(ours, ref, rtol=RTOL_KERNEL, atol=1e-9 * np.abs(ref).max())
    assert np.all(ours[:, 5 + 1] == 0.0)


def test_kernel_rejects_bad_shapes():
    with pytest.raises(InputError, match="fs"):
        adc_shift_add(np.zeros((1, 1, 1, 1, 1, 4)), None, np.zeros((2, 2)), np.ones((1, 1)), np.ones(1), 8, 1.0)
    with pytest.raises(InputError, match="noise"):
        adc_shift_add(np.zeros((1, 1, 1, 1, 1, 4)), np.ones((2, 1, 1, 1, 1, 4)), np.ones((1, 1, 4)), np.ones((1, 1)),
                      np.ones(1), 8, 1.0)


def _dense_transfer(g, r_wl, r_bl):
    """Plain nodal analysis (dense solve) of the reference crossbar, r_driver = r_sense = 0."""
    m, n = g.shape
    size = 2 * m * n
    wl = lambda i, j: i * n + j  # noqa: E731
    bl = lambda i, j: m * n + i * n + j  # noqa: E731
    a = np.zeros((size, size))
    src = np.zeros((size, m))
    for i in range(m):
        for j in range(n):
            x, y = wl(i, j), bl(i, j)
            a[x, x] += g[i, j]
            a[y, y] += g[i, j]
            a[x, y] -= g[i, j]
            a[y, x] -= g[i, j]
            if j == 0:
                a[x, x] += 1 / r_wl
                src[x, i] = 1 / r_wl
            else:
                p = wl(i, j - 1)
                for u, v in ((x, p), (p, x)):
                    a[u, u] += 1 / r_wl
                    a[u, v] -= 1 / r_wl
            if i == m - 1:
                a[y, y] += 1 / r_bl  # last segment to the sense node at 0 V
            else:
                q = bl(i + 1, j)
                for u, v in ((y, q), (q, y)):
                    a[u, u] += 1 / r_bl
                    a[u, v] -= 1 / r_bl
    volts = np.linalg.solve(a, src)  # one column per word line at 1 V
    return np.array([[volts[bl(m - 1, j), i] / r_bl for j in range(n)] for i in range(m)])


def test_tile_transfer_against_dense_nodal_twin(rng):
    g = rng.uniform(1e-6, 1e-4, (5, 4))
    cfg = CimConfig(r_wl=2.0, r_bl=3.0)
    np.testing.assert_allclose(tile_transfer(g, cfg), _dense_transfer(g, 2.0, 3.0), rtol=1e-9)
    assert np.array_equal(tile_transfer(g, CimConfig()), g)  # no wires: exactly G


@pytest.mark.parametrize("sign", ["differential", "offset"])
def test_ideal_analog_matrix_reproduces_product(rng, sign):
    cfg = CimConfig().with_(rows=16, cols=12, cell_bits=8, n_slices=3, input_bits=24, adc_bits=24, sign=sign)
    w = rng.standard_normal((40, 13))
    x = rng.standard_normal((7, 40))
    am = AnalogMatrix(map_matrix(w, cfg.mapping), cfg, rng)
    am.calibrate(x)
    y, costs = am.matmul(x)
    assert np.abs(y - x @ w).max() < 1e-5 * np.abs(x @ w).max()
    assert costs.conversions == 7 * 2 * 23 * am.n_tiles * cfg.mapping.weight_cols
    # array energy without wires is exactly t_read * sum over reads of v^2 G
    assert costs.array > 0 and costs.adc == pytest.approx(cfg.adc_energy * costs.conversions)


def test_uncalibrated_matrix_refuses(rng):
    cfg = CimConfig().with_(rows=8, cols=8)
    am = AnalogMatrix(map_matrix(rng.standard_normal((8, 4)), cfg.mapping), cfg, rng)
    with pytest.raises(InputError, match="calibrat"):
        am.matmul(np.ones((1, 8)))


def test_mapping_rejects_bad_values():
    with pytest.raises(InputError, match="cell_bits"):
        Mapping(cell_bits=0)
    with pytest.raises(InputError, match="sign"):
        Mapping(sign="twos")
    with pytest.raises(InputError, match="g_min"):
        CimConfig(g_min=2e-4)


def test_programming_through_the_device_layer(rng):
    from cimphys.layers.analog import program_conductances

    digits = rng.integers(0, 16, size=(2, 3, 2, 8, 8)).astype(np.uint8)
    cfg = CimConfig(g_min=1e-6, g_max=20e-6)
    target = cfg.g_min + digits * cfg.delta_g
    assert np.array_equal(program_conductances(digits, cfg, rng), target)
    one_shot = program_conductances(digits, cfg.with_(programming="pcm"), np.random.default_rng(1))
    verified = program_conductances(digits, cfg.with_(programming="write_verify"), np.random.default_rng(1))
    rms = lambda g: float(np.sqrt(np.mean((g - target) ** 2)))  # noqa: E731
    assert rms(verified) < rms(one_shot)  # write-verify corrects the one-shot programming spread
    # accepted on a noisy verify read (1/f noise), so some cells end outside the tolerance
    assert np.mean(np.abs(verified - target) <= 0.5 * cfg.delta_g) > 0.75
    drifted = program_conductances(digits, cfg.with_(programming="write_verify", drift_time=3600.0),
                                   np.random.default_rng(1))
    assert drifted.sum() == pytest.approx(verified.sum(), rel=1e-9)  # global compensation restores the sum
    assert rms(drifted) > rms(verified)  # but not each cell's own drift


def _product_error(cfg, w, x, seed=0):
    am = AnalogMatrix(map_matrix(w, cfg.mapping), cfg, np.random.default_rng(seed))
    am.calibrate(x)
    y, _ = am.matmul(x)
    return y, float(np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w))


@pytest.mark.slow
def test_nonlinear_cells_through_newton(rng):
    w, x = rng.standard_normal((12, 6)), rng.standard_normal((4, 12))
    base = CimConfig().with_(rows=16, cols=8, adc_bits=12, n_slices=1, cell_bits=6)
    linear, _ = _product_error(base, w, x)
    # 1-bit DACs and no wires: every selected cell sees exactly v_read, where k sinh(a v_read) = g v_read
    same, _ = _product_error(base.with_(cell_nonlinearity=10.0), w, x)
    np.testing.assert_allclose(same, linear, rtol=1e-6, atol=1e-9 * np.abs(linear).max())
    # 2-bit DACs: cells at v_read/3 and 2v_read/3 pass less than g·v, more so as a grows
    errs = [_product_error(base.with_(dac_bits=2, cell_nonlinearity=a), w, x)[1] for a in (1e-3, 8.0, 20.0)]
    assert errs[0] < errs[1] < errs[2], errs


@pytest.mark.parametrize("sign", ["differential", "offset"])
def test_calibration_sums_by_matrix_products_match_the_direct_sums(rng, sign):
    """calibrate() forms the column-fit sums from products over the reads; the direct twin
    forms the no-wire target currents of every read and sums the element products."""
    cfg = CimConfig(r_wl=2.0, r_bl=2.0).with_(rows=16, cols=12, sign=sign)
    w, x = rng.standard_normal((40, 13)), rng.standard_normal((9, 40))
    am = AnalogMatrix(map_matrix(w, cfg.mapping), cfg, rng)
    am.calibrate(x)
    digits, _ = am._reads(x)
    m = cfg.mapping
    for r in range(am.n_rb):
        f = am._block_currents(digits, r).astype(np.float64)
        f = f.reshape(-1, *f.shape[3:])
        t = am._target_currents(digits, r).reshape(f.shape)
        u = digits[..., r * m.rows:(r + 1) * m.rows].sum(axis=-1, dtype=np.float64).reshape(-1, 1, 1, 1) * cfg.v_lsb
        for k, direct in enumerate(((f * t).sum(0), (t * t).sum(0), (f * u).sum(0), (t * u).sum(0))):
            np.testing.assert_allclose(am._fit[k, r], direct, rtol=1e-12, atol=1e-30)
        assert am._fit[4, r] == pytest.approx(float((u * u).sum()), rel=1e-12)
        assert np.array_equal(am.fs[r], np.abs(f).max(axis=0))
