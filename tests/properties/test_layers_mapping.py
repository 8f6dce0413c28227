"""Hypothesis: any matrix on any tile geometry reassembles from its cell digits; inputs from their reads."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.layers.mapping import Mapping, input_digits, map_matrix, quantise_inputs

mappings = st.builds(
    Mapping,
    rows=st.integers(1, 9),
    cols=st.integers(3, 9),
    cell_bits=st.integers(1, 4),
    n_slices=st.integers(1, 3),
    input_bits=st.integers(2, 10),
    dac_bits=st.integers(1, 4),
    sign=st.sampled_from(["differential", "offset"]),
)


@settings(max_examples=60, deadline=None)
@given(m=mappings, k=st.integers(1, 20), n=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_weights_reassemble_from_digits(m, k, n, seed):
    if m.sign == "offset" and m.n_slices * m.cell_bits < 2:
        return  # offset encoding needs two magnitude bits (checked by quantise_weights)
    w = np.random.default_rng(seed).standard_normal((k, n))
    mm = map_matrix(w, m)
    wc = m.weight_cols
    total = np.zeros((mm.digits.shape[0] * m.rows, mm.digits.shape[1] * wc), dtype=np.int64)
    for (r, c, s), d in np.ndenumerate(np.empty(mm.digits.shape[:3])):
        cell = mm.digits[r, c, s].astype(np.int64) << (s * m.cell_bits)
        part = cell[:, 0:2 * wc:2] - cell[:, 1:2 * wc:2] if m.sign == "differential" else cell[:, :wc]
        total[r * m.rows:(r + 1) * m.rows, c * wc:(c + 1) * wc] += part
    if m.sign == "offset":
        total -= 2 ** (m.n_slices * m.cell_bits - 1)
    assert np.array_equal(total[:k, :n], mm.q)
    assert np.all(np.abs(mm.q * mm.scale - w) <= mm.scale / 2 * (1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(m=mappings, seed=st.integers(0, 2**16), scale=st.floats(1e-6, 1e6))
def test_inputs_reassemble_from_reads(m, seed, scale):
    x = np.random.default_rng(seed).standard_normal((3, 7)) * scale
    p, s = quantise_inputs(x, m.input_bits)
    d = input_digits(p, m)
    assert d.max() <= 2**m.dac_bits - 1 and d.min() >= 0
    back = sum((d[0, r] - d[1, r]) * 2 ** (r * m.dac_bits) for r in range(m.reads_per_phase))
    assert np.array_equal(back, p)
    assert np.all(np.abs(p * s[:, None] - x) <= s[:, None] / 2 * (1 + 1e-12))
