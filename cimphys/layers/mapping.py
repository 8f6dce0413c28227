"""Weight matrices onto crossbar tiles: quantisation, bit slicing, sign encoding, tiling.

A static weight ``w`` of shape ``(K, N)`` (``y = x @ w``) becomes integer weights and a scale
per output column, ``w ≈ s_w[j] · q[i, j]``, with ``q`` in ``[-Q, Q]`` and ``Q = 2**B - 1``
where ``B = n_slices · cell_bits`` magnitude bits (``weight_bits = B + 1`` with the sign).
The magnitude is cut into ``n_slices`` digits of ``cell_bits`` bits, ``|q| = Σ_s d_s 2**(s·b)``;
each digit is one cell programmed to ``G = g_min + d · Δg`` with ``Δg = (g_max - g_min) /
(2**b - 1)``, and the digital periphery shifts and adds the slices' outputs.  Signs:

- ``"differential"``: every weight uses a column pair (G+, G-); the positive part of ``q``
  goes to G+, the negative part to G-; the sense amplifier reads ``I+ - I-``, so ``g_min``
  cancels.  A tile of ``C`` physical columns holds ``C // 2`` weight columns.
- ``"offset"``: ``u = q + 2**(B-1)`` in ``[0, 2**B - 1]`` (``|q| <= 2**(B-1) - 1``) stored in
  one column; the last physical column of every tile is a reference column at the mid level
  ``2**(b-1)`` (conductance ``g_min + 2**(b-1) Δg``) whose current the sense amplifier
  subtracts, so the ADC sees signed, signal-sized currents instead of the offset's common mode;
  the digital periphery removes the rest exactly, ``(2**(B-1) - M) · Σ x`` with
  ``M = 2**(b-1) Σ_s 2**(s·b)``.  A tile of ``C`` columns holds ``C - 1`` weight columns.

Inputs are quantised per row (token) to ``input_bits`` (sign + magnitude), ``x ≈ s_x · p``,
and the magnitude is applied bit-serially in chunks of ``dac_bits`` (one array read per chunk
and sign phase, voltage ``v = digit · v_read / (2**dac_bits - 1)``).  The matrix is tiled into
``rows``-row blocks whose partial sums are added digitally.

References
----------
A. Shafiee et al., "ISAAC: a convolutional neural network accelerator with in-situ analog
arithmetic in crossbars", ISCA 2016, doi:10.1109/ISCA.2016.12 (bit slicing, shift-add, offset
encoding).  W. Wan et al., "A compute-in-memory chip based on resistive random-access memory",
Nature 608, 504 (2022), doi:10.1038/s41586-022-04992-8 (differential pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import as_array
from ..errors import InputError

__all__ = ["Mapping", "MappedMatrix", "input_digits", "map_integers", "map_matrix", "map_q4_1", "quantise_inputs", "quantise_weights"]

SIGN_SCHEMES = ("differential", "offset")


@dataclass(frozen=True)
class Mapping:
    """How a matrix is laid out on tiles.

    Parameters
    ----------
    rows, cols : int
        Physical array size (word lines, bit lines).
    cell_bits : int
        Bits stored per cell (the device has ``2**cell_bits`` programmable levels).
    n_slices : int
        Cells (slices) per weight magnitude; weight resolution is ``n_slices·cell_bits + 1`` bits.
    input_bits : int
        Input resolution including the sign.
    dac_bits : int
        Magnitude bits applied per array read (1 = bit-serial).
    sign : str
        ``"differential"`` or ``"offset"``.
    """

    rows: int = 128
    cols: int = 128
    cell_bits: int = 4
    n_slices: int = 2
    input_bits: int = 8
    dac_bits: int = 1
    sign: str = "differential"

    def __post_init__(self):
        checks = {"rows": (self.rows, 1, 65536), "cols": (self.cols, 2, 65536), "cell_bits": (self.cell_bits, 1, 8),
                  "n_slices": (self.n_slices, 1, 8), "input_bits": (self.input_bits, 2, 24),
                  "dac_bits": (self.dac_bits, 1, 16)}
        for name, (value, lo, hi) in checks.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise InputError(f"{name}: expected an integer in [{lo}, {hi}], got {value!r}")
        if self.sign not in SIGN_SCHEMES:
            raise InputError(f"sign: expected one of {SIGN_SCHEMES}, got {self.sign!r}")
        if self.n_slices * self.cell_bits > 24:
            raise InputError(f"n_slices*cell_bits: at most 24 weight magnitude bits, got {self.n_slices * self.cell_bits}")

    @property
    def weight_bits(self) -> int:
        return self.n_slices * self.cell_bits + 1

    @property
    def weight_cols(self) -> int:
        """Weight columns per tile."""
        return self.cols // 2 if self.sign == "differential" else self.cols - 1

    @property
    def offset_correction(self) -> int:
        """Offset scheme: ``2**(B-1) - M``, times ``Σ x`` the digital correction of the shift-added sum."""
        b = self.cell_bits
        return 2 ** (self.n_slices * b - 1) - 2 ** (b - 1) * sum(2 ** (s * b) for s in range(self.n_slices))

    @property
    def reads_per_phase(self) -> int:
        return -(-(self.input_bits - 1) // self.dac_bits)

    def grid(self, k: int, n: int) -> tuple[int, int]:
        """Row blocks and column blocks for a (k, n) matrix."""
        return -(-k // self.rows), -(-n // self.weight_cols)


@dataclass(frozen=True)
class MappedMatrix:
    """A weight matrix as cell digits, ready for conductance programming.

    Attributes
    ----------
    mapping : Mapping
    shape : (int, int)
        ``(K, N)`` of the original matrix.
    scale : ndarray (N,)
        Per-column weight scale ``s_w`` (weight units per integer step).
    q : ndarray (K, N) int64
        Integer weights.
    digits : ndarray (n_row_blocks, n_col_blocks, n_slices, rows, cols) uint8
        Cell digit of every physical cell (0 .. 2**cell_bits - 1); unused cells are 0
        (programmed to ``g_min``).
    """

    mapping: Mapping
    shape: tuple[int, int]
    scale: np.ndarray
    q: np.ndarray
    digits: np.ndarray

    @property
    def n_tiles(self) -> int:
        return int(np.prod(self.digits.shape[:3]))

    @property
    def utilisation(self) -> float:
        """Fraction of physical cells that hold (part of) a weight."""
        k, n = self.shape
        per_weight = 2 if self.mapping.sign == "differential" else 1
        return k * n * per_weight * self.mapping.n_slices / (self.n_tiles * self.mapping.rows * self.mapping.cols)


def quantise_weights(w, mapping: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Per-column symmetric quantisation ``w ≈ scale[j] · q[i, j]``.

    Returns ``(q, scale)``; ``q`` int64 in ``[-Q, Q]`` (differential) or ``[-2**(B-1), 2**(B-1) - 1]``
    (offset).  An all-zero column gets scale 1 and zero weights.
    """
    w = as_array("w", w, ndim=2)
    b = mapping.n_slices * mapping.cell_bits
    qmax = 2**b - 1 if mapping.sign == "differential" else 2 ** (b - 1) - 1
    if qmax < 1:
        raise InputError("mapping: offset encoding needs at least 2 weight magnitude bits")
    peak = np.abs(w).max(axis=0)
    scale = np.where(peak > 0, peak / qmax, 1.0)
    return np.rint(w / scale).astype(np.int64), scale


def map_matrix(w, mapping: Mapping) -> MappedMatrix:
    """Quantise ``w`` (K, N), slice it and lay it out on tiles (see the module docstring)."""
    q, scale = quantise_weights(w, mapping)
    return map_integers(q, scale, mapping)


def map_integers(q: np.ndarray, scale: np.ndarray, mapping: Mapping) -> MappedMatrix:
    """Slice integer weights ``q`` (K, N) (``w = scale[j] q[i, j]``) and lay them out on tiles.

    ``q`` must be within the mapping's range (:func:`quantise_weights`); the KV cache on CIM
    (:mod:`cimphys.layers.kv_cim`) quantises its rows itself and maps them with this.
    """
    b_all = mapping.n_slices * mapping.cell_bits
    lo, hi = (-(2**b_all - 1), 2**b_all - 1) if mapping.sign == "differential" else (-(2 ** (b_all - 1)),
                                                                                      2 ** (b_all - 1) - 1)
    if q.size and (q.min() < lo or q.max() > hi):
        raise InputError(f"q: integer weights must be in [{lo}, {hi}] for this mapping, got {q.min()}..{q.max()}")
    k, n = q.shape
    m = mapping
    rb, cb = m.grid(k, n)
    wc, b = m.weight_cols, m.cell_bits
    mask = 2**b - 1
    pad = np.zeros((rb * m.rows, cb * wc), dtype=np.int64)
    if m.sign == "differential":
        pos = pad.copy()
        pos[:k, :n] = np.maximum(q, 0)
        neg = pad
        neg[:k, :n] = np.maximum(-q, 0)
        planes = []
        for s in range(m.n_slices):
            phys = np.empty((rb * m.rows, cb * m.cols), dtype=np.uint8)
            cols = phys.reshape(rb * m.rows, cb, m.cols)
            cols[:, :, 0:2 * wc:2] = ((pos >> (s * b)) & mask).reshape(-1, cb, wc)
            cols[:, :, 1:2 * wc:2] = ((neg >> (s * b)) & mask).reshape(-1, cb, wc)
            cols[:, :, 2 * wc:] = 0
            planes.append(phys)
    else:
        u = pad
        u[:k, :n] = q + 2 ** (m.n_slices * b - 1)
        planes = []
        for s in range(m.n_slices):
            phys = np.zeros((rb * m.rows, cb * m.cols), dtype=np.uint8)
            cols = phys.reshape(rb * m.rows, cb, m.cols)
            cols[:, :, :wc] = ((u >> (s * b)) & mask).reshape(-1, cb, wc)
            cols[:, :, m.cols - 1] = 2 ** (b - 1)  # the mid-level reference column
            planes.append(phys)
    stack = np.stack(planes)  # (slices, rb*rows, cb*cols)
    digits = stack.reshape(m.n_slices, rb, m.rows, cb, m.cols).transpose(1, 3, 0, 2, 4)
    return MappedMatrix(m, (k, n), scale, q, np.ascontiguousarray(digits))


def map_q4_1(codes: np.ndarray, scale: np.ndarray, mapping: Mapping) -> MappedMatrix:
    """One block of 32 input rows of a Q4_1 matrix, its 4-bit codes stored as cell levels exactly.

    ``codes`` (32, N) in 0..15 and the block's step ``scale`` (N,) (llama.cpp's ``d``).  The
    code is the cell digit itself: one 16-level cell per weight (``cell_bits = 4``,
    ``n_slices = 1``) in the offset scheme, so the tile computes ``Σ x (code - 8)`` and
    ``w = d · code + m = d (code - 8) + (8 d + m)``: the caller adds ``(8 d + m) Σ x`` of the
    block digitally.  ``mapping`` must have ``rows = 32``, ``cell_bits = 4``, ``n_slices = 1``
    and ``sign = "offset"``.
    """
    m = mapping
    if (m.rows, m.cell_bits, m.n_slices, m.sign) != (32, 4, 1, "offset"):
        raise InputError(f"mapping: Q4_1 codes need rows=32, cell_bits=4, n_slices=1, sign='offset', got "
                         f"{(m.rows, m.cell_bits, m.n_slices, m.sign)}")
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != 32 or codes.min() < 0 or codes.max() > 15:
        raise InputError(f"codes: expected (32, N) integers in 0..15, got shape {codes.shape}")
    k, n = codes.shape
    _, cb = m.grid(k, n)
    wc = m.weight_cols
    phys = np.zeros((m.rows, cb, m.cols), dtype=np.uint8)
    u = np.zeros((m.rows, cb * wc), dtype=np.uint8)
    u[:, :n] = codes
    phys[:, :, :wc] = u.reshape(m.rows, cb, wc)
    phys[:, :, m.cols - 1] = 8  # the mid-level reference column
    digits = phys.transpose(1, 0, 2)[None, :, None]  # (1, cb, 1, rows, cols)
    q = codes.astype(np.int64) - 8
    return MappedMatrix(m, (k, n), np.asarray(scale, np.float64), q, np.ascontiguousarray(digits))


def quantise_inputs(x, input_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric quantisation ``x ≈ scale[r] · p[r, i]`` with ``|p| <= 2**(bits-1) - 1``."""
    x = as_array("x", x, ndim=2)
    pmax = 2 ** (input_bits - 1) - 1
    peak = np.abs(x).max(axis=1)
    scale = np.where(peak > 0, peak / pmax, 1.0)
    return np.rint(x / scale[:, None]).astype(np.int64), scale


def input_digits(p: np.ndarray, mapping: Mapping) -> np.ndarray:
    """Input digits per read: (2 phases, reads_per_phase, batch, K) float64 in [0, 2**dac_bits - 1].

    Phase 0 carries the positive part of ``p``, phase 1 the magnitude of the negative part;
    read ``r`` carries magnitude bits ``r·dac_bits .. (r+1)·dac_bits - 1``.
    """
    mask = 2**mapping.dac_bits - 1
    out = np.empty((2, mapping.reads_per_phase) + p.shape)
    for phase, part in enumerate((np.maximum(p, 0), np.maximum(-p, 0))):
        for r in range(mapping.reads_per_phase):
            out[phase, r] = (part >> (r * mapping.dac_bits)) & mask
    return out
