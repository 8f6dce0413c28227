"""Mapping arithmetic: weights onto cell digits and back, inputs into DAC digits."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.errors import InputError
from cimphys.layers.mapping import Mapping, input_digits, map_matrix, quantise_inputs, quantise_weights


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


def test_mapping_rejects_bad_values():
    with pytest.raises(InputError, match="cell_bits"):
        Mapping(cell_bits=0)
    with pytest.raises(InputError, match="sign"):
        Mapping(sign="twos")
