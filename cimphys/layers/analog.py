"""A weight matrix programmed into tiles and multiplied in analog: currents, ADC, shift-add.

:class:`AnalogMatrix` takes a :class:`~cimphys.layers.mapping.MappedMatrix`, programs every
tile's cells to conductances (with the programming error of the configured device model),
characterises each tile's crossbar with wire resistance once (the transfer matrix of
:class:`cimphys.circuits.crossbar.Crossbar`, exact for linear cells; cached on disk, see
:mod:`cimphys.layers.characterise`) and then runs matrix products.  Nonlinear cells
(``cell_nonlinearity > 0``: ``I = k sinh(a V)``) have no transfer matrix: every read of every tile
is then a full Newton solve of the crossbar (:mod:`cimphys.circuits.newton`), which is slow and
meant for small models.

1. inputs quantised per token and cut into DAC digits (sign phases × bit chunks);
2. one array read per digit set: ``I = V @ T`` for every tile of a row block at once (BLAS);
3. the sense amplifier forms ``I+ - I-`` (differential) or ``I - I_ref`` (offset column) and
   adds its input-referred noise (seeded);
4. a per-(tile, column) ADC quantises to ``adc_bits`` over its calibrated range ``±I_fs``
   (mid-tread uniform quantiser: code = clip(round(I / LSB), -2**(b-1), 2**(b-1) - 1) with
   LSB = I_fs / (2**(b-1) - 1), the ideal converter of :mod:`cimphys.circuits.adc` shifted to
   signed codes);
5. the digital periphery turns codes back into integer dot products (``I / (v_lsb Δg)``),
   shifts and adds them over input chunks, sign phases and weight slices, adds the partial
   sums of the row blocks, and scales by ``s_x s_w``.

Because the array is linear, step 3's subtraction is folded into the characterised transfer
matrix (``T+ - T-`` or ``T - T_ref`` per weight column), which halves the read arithmetic and is
exact.  Steps 4-5 are one Numba kernel, :func:`_adc_shift_add`, with a plain NumPy twin in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._numba import jit_parallel, prange
from ..errors import InputError
from .config import CimConfig
from .mapping import MappedMatrix, input_digits, quantise_inputs

__all__ = ["AnalogMatrix", "Costs", "adc_shift_add", "program_conductances"]


@jit_parallel
def _adc_shift_add(i_sense, noise, fs, gain, offset, vsum, read_w, slice_w, bits, unit, out):
    """ADC (with sense noise) and shift-add into ``out``.

    i_sense : (P, R, B, CB, S, W) float32 sensed column currents (I+ - I- or I - I_ref), A
    noise   : same shape, float32 (A), or shape (1, 1, 1, 1, 1, 1) for none
    fs      : (CB, S, W) ADC full scale, A (0: column unused)
    gain    : (CB, S, W) calibrated column gain (measured / intended current), divided out digitally
    offset  : (CB, S, W) calibrated current per volt of summed word-line drive, A/V, subtracted digitally
    vsum    : (P, R, B) summed word-line voltage of each read, V
    read_w  : (P, R) sign and shift of each read; slice_w : (S,) shift of each weight slice
    unit    : current of one unit of integer dot product, A
    out     : (B, CB * W) float64, integer-domain dot products accumulated
    """
    n_p, n_r, n_b, n_cb, n_s, n_w = i_sense.shape
    top = 2.0 ** (bits - 1) - 1.0
    bottom = -(2.0 ** (bits - 1))
    has_noise = noise.shape[0] > 1
    inv_lsb = np.zeros((n_cb, n_s, n_w))
    back = np.zeros((n_cb, n_s, n_w))  # code -> integer dot product, with the slice shift
    for cb in range(n_cb):
        for s in range(n_s):
            for j in range(n_w):
                if fs[cb, s, j] > 0.0:
                    inv_lsb[cb, s, j] = top / fs[cb, s, j]
                    back[cb, s, j] = slice_w[s] / (unit * gain[cb, s, j])
    for b in prange(n_b):  # reads innermost-contiguous: columns are the fastest axis
        for p in range(n_p):
            for r in range(n_r):
                w = read_w[p, r]
                for cb in range(n_cb):
                    for s in range(n_s):
                        for j in range(n_w):
                            if back[cb, s, j] == 0.0:
                                continue
                            cur = float(i_sense[p, r, b, cb, s, j])
                            if has_noise:
                                cur += noise[p, r, b, cb, s, j]
                            code = min(max(np.floor(cur * inv_lsb[cb, s, j] + 0.5), bottom), top)
                            est = code / inv_lsb[cb, s, j] - offset[cb, s, j] * vsum[p, r, b]
                            out[b, cb * n_w + j] += w * est * back[cb, s, j]


def adc_shift_add(i_sense, noise, fs, read_w, slice_w, bits: int, unit: float, out=None, gain=None, offset=None,
                  vsum=None):
    """Checked wrapper of :func:`_adc_shift_add` (contiguous arrays, shapes agree)."""
    i_sense = np.ascontiguousarray(i_sense, dtype=np.float32)
    if i_sense.ndim != 6:
        raise InputError(f"i_sense: expected 6-D (P, R, B, CB, S, W), got shape {i_sense.shape}")
    n_p, n_r, n_b, n_cb, n_s, n_w = i_sense.shape
    noise = np.zeros((1,) * 6, np.float32) if noise is None else np.ascontiguousarray(noise, dtype=np.float32)
    if noise.shape[0] > 1 and noise.shape != i_sense.shape:
        raise InputError(f"noise: expected shape {i_sense.shape}, got {noise.shape}")
    fs = np.ascontiguousarray(fs, dtype=np.float64)
    if fs.shape != (n_cb, n_s, n_w):
        raise InputError(f"fs: expected shape {(n_cb, n_s, n_w)}, got {fs.shape}")
    gain = np.ones(fs.shape) if gain is None else np.ascontiguousarray(gain, dtype=np.float64)
    if gain.shape != fs.shape or not (gain > 0).all():
        raise InputError(f"gain: expected positive values of shape {fs.shape}, got shape {gain.shape}")
    offset = np.zeros(fs.shape) if offset is None else np.ascontiguousarray(offset, dtype=np.float64)
    vsum = np.zeros((n_p, n_r, n_b)) if vsum is None else np.ascontiguousarray(vsum, dtype=np.float64)
    if offset.shape != fs.shape or vsum.shape != (n_p, n_r, n_b):
        raise InputError(f"offset, vsum: expected shapes {fs.shape} and {(n_p, n_r, n_b)}, "
                         f"got {offset.shape} and {vsum.shape}")
    read_w = np.ascontiguousarray(read_w, dtype=np.float64)
    if read_w.shape != (n_p, n_r):
        raise InputError(f"read_w: expected shape {(n_p, n_r)}, got {read_w.shape}")
    out = np.zeros((n_b, n_cb * n_w)) if out is None else out
    _adc_shift_add(i_sense, noise, fs, gain, offset, vsum, np.ascontiguousarray(read_w), np.ascontiguousarray(slice_w, dtype=np.float64), int(bits),
                   float(unit), out)
    return out


@dataclass
class Costs:
    """Energy (J), time (s) and event counts accumulated by analog products."""

    array: float = 0.0
    dac: float = 0.0
    sense: float = 0.0
    adc: float = 0.0
    digital: float = 0.0
    write: float = 0.0
    latency: float = 0.0
    write_time: float = 0.0
    conversions: float = 0.0
    cell_writes: float = 0.0
    rows: int = 0

    def add(self, other: Costs) -> None:
        for name in ("array", "dac", "sense", "adc", "digital", "write", "latency", "write_time", "conversions",
                     "cell_writes", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def program_conductances(digits: np.ndarray, cfg: CimConfig, rng: np.random.Generator) -> np.ndarray:
    """Conductances ``g_min + d Δg`` as programmed (and drifted) by the configured device, S.

    ``ideal``: exact targets.  ``gaussian``: N(0, σ (g_max - g_min)) programming error, clipped
    at 0.  ``pcm``: one programming pulse with the PCM statistical model's spread
    (:meth:`cimphys.devices.pcm.PCMModel.program`).  ``write_verify``: iterative program-and-verify
    (:func:`cimphys.devices.programming.write_verify`) to within ``write_tolerance`` (default half
    a level step).  For ``pcm`` and ``write_verify`` a ``drift_time`` > 0 then lets the cells drift
    to ``t0 + drift_time`` and applies global drift compensation, one factor for all cells from
    the summed read at t0 and at t (Joshi et al., Nat. Commun. 11, 2473 (2020),
    doi:10.1038/s41467-020-16108-9).  The device card is ``device_card`` (default
    ``nandakumar2019_pcm``).
    """
    target = cfg.g_min + digits.astype(np.float64) * cfg.delta_g
    if cfg.programming == "ideal":
        return target
    if cfg.programming == "gaussian":
        noisy = target + rng.standard_normal(target.shape) * cfg.programming_sigma * (cfg.g_max - cfg.g_min)
        return np.maximum(noisy, 0.0)
    from ..cards import load_device
    from ..devices.pcm import PCMModel

    model = PCMModel.from_card(load_device(cfg.device_card or "nandakumar2019_pcm"))
    if cfg.programming == "pcm":
        g = model.program(target, rng)
    else:
        from ..devices.programming import write_verify

        tol = cfg.write_tolerance or 0.5 * cfg.delta_g
        ds = write_verify(model, target.reshape(-1, target.shape[-1]), tol, seed=rng)
        g = np.asarray(ds["g"].values, dtype=np.float64).reshape(target.shape)
    return _drift(model, target, g, cfg, rng) if cfg.drift_time > 0 else g


def _drift(model, target: np.ndarray, g: np.ndarray, cfg: CimConfig, rng) -> np.ndarray:
    nu = model.drift_exponents(target, rng)
    g_0 = model.drift(g, nu, model.t0)
    g_t = model.drift(g, nu, model.t0 + cfg.drift_time)
    return g_t * (g_0.sum() / g_t.sum())  # global drift compensation


class AnalogMatrix:
    """A static weight matrix on tiles: program, characterise, calibrate, multiply.

    Parameters
    ----------
    mapped : MappedMatrix
    cfg : CimConfig
    rng : numpy.random.Generator
        Programming draws.
    g : ndarray (n_rb, n_cb, n_slices, rows, cols), optional
        Programmed conductances, S (drawn from ``rng`` when omitted).
    characterised : (ndarray, ndarray), optional
        :attr:`characterised` of an earlier identical matrix (the disk cache).
    transfers : PendingTransfers, optional
        The tiles of ``g`` already queued on a :class:`~cimphys.layers.characterise.TilePool`
        (the engine characterises a whole model's matrices on one pool); needs ``g``.
    """

    def __init__(self, mapped: MappedMatrix, cfg: CimConfig, rng: np.random.Generator | None, *, g=None,
                 characterised=None, transfers=None):
        self.mapped, self.cfg = mapped, cfg
        m = mapped.mapping
        self.n_rb, self.n_cb = mapped.digits.shape[:2]
        self.g = None
        if characterised is not None:
            self.sensed, self.row_g = (np.ascontiguousarray(a, dtype=np.float32) for a in characterised)
        else:
            if g is None:
                g = program_conductances(mapped.digits, cfg, rng)  # (rb, cb, s, rows, cols)
            if cfg.cell_nonlinearity > 0:  # no transfer matrix: every read is a Newton solve
                self.g = g
                self.sensed = None
                self.row_g = np.ascontiguousarray(g.sum(axis=4).transpose(0, 3, 1, 2).reshape(self.n_rb, m.rows, -1),
                                                  dtype=np.float32)
            else:
                self.sensed, self.row_g = self._characterise(g, transfers)
        self.fs = np.zeros((self.n_rb, self.n_cb, m.n_slices, m.weight_cols))
        self.gain = np.ones_like(self.fs)
        self.offset = np.zeros_like(self.fs)
        self._fit = np.zeros((5,) + self.fs.shape)  # Σ m t, Σ t t, Σ m u, Σ t u, Σ u u
        self._calib: list[tuple[int, np.ndarray]] = []

    def _characterise(self, g: np.ndarray, transfers=None) -> tuple[np.ndarray, np.ndarray]:
        """Sensed transfer (rb, rows, cb*s*wc) and row conductance sums (rb, rows, cb*s), float32."""
        from .characterise import tile_transfers

        m = self.mapped.mapping
        if transfers is None:
            t = tile_transfers(g, self.cfg)  # one crossbar solve per tile, tiles across the cores
        else:
            t = transfers.result()
            if t.shape != g.shape:
                raise InputError(f"transfers: expected shape {g.shape}, got {t.shape}")
        sensed = self._sense(t).transpose(0, 3, 1, 2, 4).reshape(self.n_rb, m.rows, -1)
        row_g = g.sum(axis=4).transpose(0, 3, 1, 2).reshape(self.n_rb, m.rows, -1)
        return np.ascontiguousarray(sensed, dtype=np.float32), np.ascontiguousarray(row_g, dtype=np.float32)

    @property
    def characterised(self) -> tuple[np.ndarray, np.ndarray] | None:
        """What the disk cache stores: (sensed transfer, row conductance sums); None for nonlinear cells."""
        return None if self.sensed is None else (self.sensed, self.row_g)

    # -- the analog read -------------------------------------------------------------------
    def _reads(self, x: np.ndarray):
        m = self.mapped.mapping
        p, s_x = quantise_inputs(x, m.input_bits)
        k = self.mapped.shape[0]
        pad = np.zeros((p.shape[0], self.n_rb * m.rows), dtype=np.int64)
        pad[:, :k] = p
        return input_digits(pad, m).astype(np.float32), s_x  # (2, R, B, rb*rows)

    def _block_currents(self, digits: np.ndarray, r: int) -> np.ndarray:
        """Sensed currents (P, R, B, cb, s, wc) of row block ``r``, A."""
        m = self.mapped.mapping
        v = digits[..., r * m.rows:(r + 1) * m.rows].reshape(-1, m.rows)
        if self.g is not None:
            return self._nonlinear_currents(v, r, digits.shape[:3])
        i = v @ self.sensed[r]
        i *= np.float32(self.cfg.v_lsb)
        n_p, n_r, n_b = digits.shape[:3]
        return i.reshape(n_p, n_r, n_b, self.n_cb, m.n_slices, m.weight_cols)

    def _nonlinear_currents(self, v: np.ndarray, r: int, lead: tuple) -> np.ndarray:
        """Full Newton solve of every tile of row block ``r`` for the reads ``v`` (digits).

        Cells follow ``I = k sinh(a V)`` with ``k = g v_read / sinh(a v_read)``: each passes its
        programmed conductance's current at the full read voltage and less below it.
        """
        from ..circuits.crossbar import Crossbar
        from ..devices.sinh import SinhCell

        m, cfg = self.mapped.mapping, self.cfg
        a = cfg.cell_nonlinearity
        volts = np.asarray(v, dtype=np.float64) * cfg.v_lsb
        out = np.empty((volts.shape[0], self.n_cb, m.n_slices, m.weight_cols), dtype=np.float32)
        for c in range(self.n_cb):
            for s in range(m.n_slices):
                k = self.g[r, c, s] * cfg.v_read / np.sinh(a * cfg.v_read)
                xb = Crossbar(None, r_wl=cfg.r_wl, r_bl=cfg.r_bl, r_driver=cfg.r_driver, r_sense=cfg.r_sense,
                              cell=SinhCell(k=k, a=a), shape=(m.rows, m.cols))
                out[:, c, s] = self._sense(xb.solve(volts).i_out)
        return out.reshape(*lead, self.n_cb, m.n_slices, m.weight_cols)

    def _sense(self, i: np.ndarray) -> np.ndarray:
        """Sense-amplifier difference over the last (column) axis: I+ - I- or I - I_ref."""
        wc = self.mapped.mapping.weight_cols
        if self.mapped.mapping.sign == "differential":
            return i[..., 0:2 * wc:2] - i[..., 1:2 * wc:2]
        return i[..., :wc] - i[..., -1:]

    def calibrate(self, x) -> None:
        """Record the sensed currents of a calibration batch ``x`` (batch, K).

        Sets each (tile, column) ADC range from the currents (``adc_calibration``) and, with
        ``column_gain_calibration``, an affine correction per column: the least-squares fit
        ``i_meas ≈ α i_target + β Σ v`` of the measured sensed current against the current the
        intended conductances would give without wires (``i_target``) and the read's summed
        word-line voltage (``Σ v``, known digitally); the digital back end computes
        ``(i - β Σ v) / α``.  It absorbs the mean IR-drop attenuation, the reference column's
        mismatch (offset encoding) and a global programming/drift gain, not pattern-dependent errors.
        """
        m, cfg = self.mapped.mapping, self.cfg
        digits, _ = self._reads(np.asarray(x, dtype=np.float64))
        shape = self.fs.shape[1:]
        for r in range(self.n_rb):
            i = self._block_currents(digits, r)  # (P, R, B, cb, s, wc)
            flat = i.reshape(-1, *shape)
            mag = np.abs(flat)
            # "max" needs only each call's peak; a percentile needs every read
            self._calib.append((r, mag.max(axis=0, keepdims=True) if cfg.adc_calibration == "max" else mag))
            if cfg.column_gain_calibration:
                # Sums over the reads n of f t, t t, f u, t u with t = V Tg the no-wire target
                # currents (V: read voltages, Tg: intended sensed conductances), by matrix
                # products over the reads instead of forming t: sum_n f t = colsum(Tg * (V^T f)),
                # sum_n t t = colsum(Tg * (V^T V) Tg), sum_n t u = (u^T V) Tg.
                block = digits[..., r * m.rows:(r + 1) * m.rows].reshape(-1, m.rows)
                v = block.astype(np.float64) * cfg.v_lsb
                u = block.sum(axis=-1, dtype=np.float64) * cfg.v_lsb
                tg = self._target_matrix()[r]
                f = flat.reshape(flat.shape[0], -1).astype(np.float64)
                self._fit[0, r] += (tg * (v.T @ f)).sum(axis=0).reshape(shape)
                self._fit[1, r] += (tg * ((v.T @ v) @ tg)).sum(axis=0).reshape(shape)
                self._fit[2, r] += (u @ f).reshape(shape)
                self._fit[3, r] += ((u @ v) @ tg).reshape(shape)
                self._fit[4, r] += float(u @ u)
        self._finish_calibration()
        if cfg.column_gain_calibration:
            self._solve_affine()

    def _solve_affine(self) -> None:
        """Per-column least squares of i_meas on (i_target, Σ v); ill-posed columns keep (1, 0)."""
        mt, tt, mu, tu, uu = self._fit
        det = tt * uu - tu * tu
        ok = (tt > 0) & (det > 1e-12 * np.maximum(tt * uu, 1e-300))
        safe = np.where(ok, det, 1.0)
        alpha = np.where(ok, (mt * uu - mu * tu) / safe, 1.0)
        beta = np.where(ok, (tt * mu - tu * mt) / safe, 0.0)
        good = ok & (alpha > 0.05)  # a column that lost its signal is not "corrected" by a huge gain
        self.gain = np.where(good, alpha, 1.0)
        self.offset = np.where(good, beta, 0.0)

    def _target_matrix(self) -> np.ndarray:
        """Sensed conductances the intended digits give without wires, (rb, rows, cb*s*wc), S."""
        if not hasattr(self, "_target"):
            m = self.mapped.mapping
            d = self.mapped.digits.astype(np.float64) * self.cfg.delta_g  # (rb, cb, s, rows, cols)
            self._target = np.ascontiguousarray(self._sense(d).transpose(0, 3, 1, 2, 4).reshape(self.n_rb, m.rows, -1))
        return self._target

    def _target_currents(self, digits: np.ndarray, r: int) -> np.ndarray:
        """Sensed currents (P, R, B, cb, s, wc) the intended conductances give without wires, A."""
        m = self.mapped.mapping
        v = digits[..., r * m.rows:(r + 1) * m.rows].reshape(-1, m.rows).astype(np.float64) * self.cfg.v_lsb
        return (v @ self._target_matrix()[r]).reshape(*digits.shape[:3], self.n_cb, m.n_slices, m.weight_cols)

    def _finish_calibration(self) -> None:
        how = self.cfg.adc_calibration
        for r in range(self.n_rb):
            parts = [d for rr, d in self._calib if rr == r]
            if not parts:
                continue
            stack = np.concatenate(parts, axis=0)
            self.fs[r] = stack.max(axis=0) if how == "max" else np.percentile(stack, float(how[1:]), axis=0)
        self.fs[self.fs <= 0] = 0.0

    @property
    def calibration(self) -> np.ndarray:
        """ADC ranges, column gains and offsets stacked (3, rb, cb, s, wc), for the cache."""
        return np.stack([self.fs, self.gain, self.offset])

    def set_calibration(self, stacked: np.ndarray) -> None:
        self.fs, self.gain, self.offset = (np.array(a, dtype=np.float64) for a in stacked)

    def clear_calibration_data(self) -> None:
        self._calib = []

    @property
    def calibrated(self) -> bool:
        return bool((self.fs > 0).any())

    def matmul(self, x, rng: np.random.Generator | None = None) -> tuple[np.ndarray, Costs]:
        """``x @ w`` (batch, N) through the tiles, and the costs of doing it."""
        if not self.calibrated:
            raise InputError("AnalogMatrix: ADC ranges are not calibrated; call calibrate(x_batch) first")
        m, cfg = self.mapped.mapping, self.cfg
        x = np.asarray(x, dtype=np.float64)
        digits, s_x = self._reads(x)
        n_p, n_r, n_b = digits.shape[:3]
        read_w = np.array([[(1.0 if ph == 0 else -1.0) * 2.0 ** (r * m.dac_bits) for r in range(n_r)]
                           for ph in range(n_p)])
        slice_w = 2.0 ** (np.arange(m.n_slices) * m.cell_bits)
        acc = np.zeros((n_b, self.n_cb * m.weight_cols))
        costs = Costs(rows=n_b)
        for r in range(self.n_rb):
            i = self._block_currents(digits, r)
            noise = None
            if cfg.sense_noise > 0 and rng is not None:
                noise = (rng.standard_normal(i.shape, dtype=np.float32) * np.float32(cfg.sense_noise))
            vsum = digits[..., r * m.rows:(r + 1) * m.rows].sum(axis=-1, dtype=np.float64) * cfg.v_lsb
            adc_shift_add(i, noise, self.fs[r], read_w, slice_w, cfg.adc_bits, cfg.v_lsb * cfg.delta_g, out=acc,
                          gain=self.gain[r], offset=self.offset[r], vsum=vsum)
            self._count(digits[..., r * m.rows:(r + 1) * m.rows], r, costs)
        q = acc[:, : self.mapped.shape[1]]
        if m.sign == "offset":
            q = q - m.offset_correction * np.rint(x / s_x[:, None]).sum(axis=1, keepdims=True)
        return q * s_x[:, None] * self.mapped.scale[None, :], costs

    def _count(self, digits: np.ndarray, r: int, costs: Costs) -> None:
        """Energy and event counts of one row block's reads."""
        m, cfg = self.mapped.mapping, self.cfg
        n_p, n_r, n_b, rows = digits.shape
        reads = n_p * n_r * n_b
        tiles = self.n_cb * m.n_slices
        flat = digits.reshape(-1, rows)
        sq = (flat * flat if m.dac_bits > 1 else flat).sum(axis=0, dtype=np.float64)  # Σ digit² per row
        costs.array += cfg.t_read * cfg.v_lsb**2 * float(sq @ self.row_g[r].sum(axis=1, dtype=np.float64))
        drives = float(np.count_nonzero(flat)) * tiles
        costs.dac += cfg.dac_energy * drives
        conv = reads * tiles * m.weight_cols
        costs.sense += cfg.sense_energy * conv
        costs.adc += cfg.adc_energy * conv
        costs.digital += cfg.digital_add_energy * conv
        costs.conversions += conv
        if r == 0:  # row blocks run in parallel; one block's read sequence sets the latency
            per_read = cfg.t_read + cfg.adc_time * -(-m.weight_cols // cfg.adcs_per_tile)
            costs.latency += n_p * n_r * n_b * per_read

    @property
    def n_tiles(self) -> int:
        return self.mapped.n_tiles
