"""``Tile``: a crossbar with its periphery — DACs/drivers, sense amplifiers, ADCs — as one unit.

Usage (the layer adapter builds on exactly this)::

    from cimphys.circuits.tile import Tile
    tile = Tile("isaac_128x128", G, seed=0)     # G: (M, N) S, or (M, 2N) with differential = true
    G = weights_to_conductances(card, W)       # (M, 2N) differential pairs from real weights
    tile.calibrate(x_cal, input_bits=8)        # per-column ADC ranges from a calibration batch
    y, record = tile.mvm(x_int, input_bits=8)  # x_int (batch, M) integers -> y (batch, N_out) int64
    i_hat = tile.codes_to_current(y, input_bits=8)   # A: estimate of sum_p 2**p i_p (= v_lsb G.T x)
    dot = tile.codes_to_dot(y, input_bits=8)         # S: estimate of G.T @ x (G+ - G- when differential)
    record.energy_total, record.latency        # xarray: J per batch item (and energy_array,
                                               # energy_dac, _sense, _adc, _digital), s

Signal chain of :meth:`Tile.mvm`:

1. :func:`~cimphys.circuits.dac.slice_inputs` cuts ``x_int`` into ``dac.bits``-wide digits (one array
   read per digit; signed inputs as a positive and a negative phase).
2. The :class:`~cimphys.circuits.dac.DAC` turns digits into word-line voltages (mismatch, settling).
3. The :class:`~cimphys.circuits.crossbar.Crossbar` is solved *with the sense amplifier's input
   resistance as its* ``r_sense`` (TIA: ``R_f / (1 + A)``; load resistor: ``R_load``).  Linear cells
   use the cached transfer matrix ``T`` and input admittance ``Y`` (source power ``v.Y.v``); a
   nonlinear ``cell`` goes through the full Newton solve.
4. The sense amplifier gives a voltage (offsets, seeded noise, saturation), the ADC a code per
   column and phase, and the digital back end shift-adds (and subtracts differential pairs).
5. :class:`~cimphys.circuits.energy.EnergyModel` turns the reads into an energy/latency record.

Every static draw (DAC, sense-offset and ADC mismatch) comes from ``seed`` and the card's seeds;
read noise comes from the ``rng`` passed to :meth:`mvm` or, if none, from the tile's own
generator (seeded by ``seed``), so a tile built with the same seed reproduces the same numbers.

The card model ``tile`` (``circuits/*.toml``) holds the array in ``[parameters]`` and the periphery
in the tables ``[dac]``, ``[sense]``, ``[adc]`` (required) and ``[energy]``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..cards import Card, ModelSpec, Parameter, load_circuit, register_model
from ..checks import as_array
from ..errors import CardError, InputError
from .adc import ADC, ADC_PARAMETERS
from .crossbar import Crossbar
from .dac import DAC, DAC_PARAMETERS, shift_add, slice_inputs
from .energy import ENERGY_PARAMETERS, EnergyModel
from .sense import SENSE_PARAMETERS, sense_from_parameters

__all__ = ["SPEC", "ReadResult", "Tile", "weights_to_conductances"]

SPEC = register_model(
    ModelSpec(
        name="tile",
        kind="circuit",
        doc="a crossbar tile with drivers, sense amplifiers and ADCs",
        parameters=(
            Parameter("rows", "1", "word lines M", kind="int", low=1, high=1 << 16),
            Parameter("cols", "1", "bit lines N (physical; pairs when differential)", kind="int", low=1, high=1 << 16),
            Parameter("differential", "1", "columns (2k, 2k+1) form a (G+, G-) pair", default=False, kind="bool"),
            Parameter("g_min_s", "S", "lowest programmable conductance", low=0.0),
            Parameter("g_max_s", "S", "highest programmable conductance", low=0.0, low_open=True),
            Parameter("v_read_v", "V", "read voltage (top DAC code)", low=0.0, high=10.0, low_open=True),
            Parameter("r_wire_per_cell_ohm", "ohm", "WL and BL wire resistance per cell pitch", low=0.0, high=1e4),
            Parameter("r_driver_ohm", "ohm", "WL driver output resistance", default=0.0, low=0.0, high=1e6),
            Parameter("t_read_s", "s", "read (integration) time per phase", low=0.0, high=1.0, low_open=True),
            Parameter("input_bits", "1", "default input resolution", default=8, kind="int", low=1, high=32),
        ),
        sections={"dac": DAC_PARAMETERS, "sense": SENSE_PARAMETERS, "adc": ADC_PARAMETERS, "energy": ENERGY_PARAMETERS},
        checks=((lambda p: p["g_min_s"] < p["g_max_s"], "g_min_s must be below g_max_s"),
                (lambda p: not p["differential"] or p["cols"] % 2 == 0, "cols must be even when differential")),
    )
)


class ReadResult(NamedTuple):
    """One batch of array reads: column currents, sense outputs and source power."""

    i_out: np.ndarray  # (batch, N) A
    v_sense: np.ndarray  # (batch, N) V
    saturated: np.ndarray  # (batch, N) bool
    p_source: np.ndarray  # (batch,) W


def _section(card: Card, name: str, declared) -> dict:
    values = {p.name: p.default for p in declared}
    values.update(card.sections.get(name, {}))
    return values


def _child_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def weights_to_conductances(card, weights, w_max: float | None = None) -> np.ndarray:
    """Differential conductances ``(M, 2N)`` for a real weight matrix ``(M, N)``.

    ``G+ = g_min + (g_max - g_min) max(w, 0) / w_max`` and ``G- = g_min + (g_max - g_min)
    max(-w, 0) / w_max``, interleaved as columns (2k, 2k+1), so ``G+ - G- = w (g_max - g_min) / w_max``.
    """
    card = card if isinstance(card, Card) else load_circuit(card)
    w = as_array("weights", weights, ndim=2)
    w_max = float(np.max(np.abs(w))) if w_max is None else float(w_max)
    if not w_max > 0.0 or np.max(np.abs(w)) > w_max:
        raise InputError(f"w_max: expected > 0 and >= max |weights|, got {w_max!r}")
    g0, g1 = card["g_min_s"], card["g_max_s"]
    out = np.empty((w.shape[0], 2 * w.shape[1]))
    out[:, 0::2] = g0 + (g1 - g0) * np.maximum(w, 0.0) / w_max
    out[:, 1::2] = g0 + (g1 - g0) * np.maximum(-w, 0.0) / w_max
    return out


class Tile:
    """A crossbar tile with drivers, sense amplifiers and ADCs, built from a ``tile`` card.

    Parameters
    ----------
    card : Card or str
        A ``tile`` circuit card, or its name/path.
    conductances : array_like, (rows, cols), S
        Cell conductances within ``[g_min_s, g_max_s]`` (columns (2k, 2k+1) are a pair when the
        card is differential).  May be None when ``cell`` carries per-cell parameters.
    seed : int
        Seeds every static mismatch draw and the tile's read-noise generator.
    cell : TwoTerminalCell, optional
        Nonlinear cells (full Newton solve per read); None: linear cells of ``conductances``.
    characterisation : dict, optional
        ``{"T": (N, M), "Y": (M, M)}`` from :meth:`characterisation` of an identical tile, to skip
        the transfer-matrix solve (for on-disk caches).
    """

    def __init__(self, card, conductances, *, seed: int = 0, cell=None, characterisation=None):
        self.card = card if isinstance(card, Card) else load_circuit(card)
        if self.card.model != "tile":
            raise CardError(f"{self.card.name}: expected a 'tile' card, got model {self.card.model!r}")
        if "adc" not in self.card.sections:
            raise CardError(f"{self.card.name}: a tile card needs an [adc] table (at least 'bits')")
        p = self.card.parameters
        self.shape = (p["rows"], p["cols"])
        self.differential = bool(p["differential"])
        g = None
        if conductances is not None:
            g = as_array("conductances", conductances, unit="S", shape=self.shape,
                         low=0.0, high=p["g_max_s"] * (1 + 1e-12))
        seq = np.random.SeedSequence([int(seed)])
        s_dac, s_sense, s_adc, s_noise = (_child_seed(c) for c in seq.spawn(4))
        dac_p, sense_p, adc_p = (_section(self.card, n, d) for n, d in
                                 (("dac", DAC_PARAMETERS), ("sense", SENSE_PARAMETERS), ("adc", ADC_PARAMETERS)))
        self.dac = DAC.from_parameters(dac_p, v_max=p["v_read_v"], t_read=p["t_read_s"], seed=s_dac ^ dac_p["seed"])
        self.sense = sense_from_parameters({**sense_p, "seed": s_sense ^ sense_p["seed"]}, p["cols"])
        adc = ADC.from_parameters(adc_p, seed=s_adc ^ adc_p["seed"])
        r = p["r_wire_per_cell_ohm"]
        self.crossbar = Crossbar(g, r_wl=r, r_bl=r, r_driver=p["r_driver_ohm"], r_sense=self.sense.r_sense,
                                 cell=cell, shape=self.shape)
        self._g_source = np.zeros(p["cols"]) if g is None else g.sum(axis=0)
        self._rng = np.random.default_rng(s_noise)
        self._char = None if characterisation is None else self._check_char(characterisation)
        z = self.sense.transimpedance
        self.adc = adc.with_range(0.0, z * p["rows"] * p["g_max_s"] * p["v_read_v"])
        e = _section(self.card, "energy", ENERGY_PARAMETERS)
        t_int = sense_p["t_int_s"] if sense_p["kind"] == "integrator" else p["t_read_s"]
        self.energy = EnergyModel(
            t_read=t_int, t_conversion=adc.conversion_time, e_conversion=adc.energy_per_conversion(),
            e_dac=dac_p["energy_per_conversion_j"], c_wordline=dac_p["c_wordline_f"], p_sense=sense_p["power_w"],
            cols_per_adc=e["cols_per_adc"], pipelined=e["pipelined"], e_shift_add=e["e_shift_add_j"])

    @classmethod
    def from_card(cls, card, conductances, **kwargs) -> Tile:
        """Same as ``Tile(card, conductances, **kwargs)``."""
        return cls(card, conductances, **kwargs)

    # ----------------------------------------------------------------- characterisation
    @property
    def linear(self) -> bool:
        return self.crossbar.cell is None

    def _check_char(self, char) -> dict:
        m, n = self.shape
        return {"T": as_array("characterisation['T']", char["T"], shape=(n, m)),
                "Y": as_array("characterisation['Y']", char["Y"], shape=(m, m))}

    def characterisation(self) -> dict:
        """Transfer matrix ``T`` (N, M, S; ``i_out = T v``) and input admittance ``Y`` (M, M, S;
        source currents ``v Y``) of the linear array, computed once and cached."""
        if not self.linear:
            raise InputError("cell: only a linear tile has a transfer matrix")
        if self._char is None:
            m, n = self.shape
            t, y = np.empty((n, m)), np.empty((m, m))
            for start in range(0, m, 64):  # blocks of unit inputs keep the node voltages small
                sol = self.crossbar.solve(np.eye(m)[start:start + 64])
                near, far = sol.source_currents
                t[:, start:start + 64] = sol.i_out.T
                y[start:start + 64] = near + far
            self._char = {"T": t, "Y": y}
        return self._char

    # ----------------------------------------------------------------- analog part
    def read(self, v_in, rng=None, current_noise=None) -> ReadResult:
        """Solve reads for word-line voltages ``v_in`` (batch, M) V and sense the columns.

        ``current_noise``, optional: ``(thermal (N,), shot (M, N))`` in A**2 and A**2/V, the
        cells' own current noise on every read: column ``j`` gets a Gaussian current of variance
        ``thermal[j] + sum_i |v_i| shot[i, j]`` (e.g. ``4 k T df sum_i G_ij`` and ``2 q df G_ij``),
        drawn before the sense amplifier's noise.
        """
        v = as_array("v_in", v_in, unit="V", ndim=2)
        if v.shape[1] != self.shape[0]:
            raise InputError(f"v_in: expected (batch, {self.shape[0]}), got {v.shape}")
        noise = self._check_current_noise(current_noise)
        if self.linear:
            c = self.characterisation()
            i_out = v @ c["T"].T
            p_src = np.einsum("bm,bm->b", v @ c["Y"], v)
        else:
            sol = self.crossbar.solve(v)
            i_out = sol.i_out
            # Reference geometry (far WL end open): all of source i's current leaves through row i's cells.
            p_src = np.einsum("bm,bm->b", v, sol.i_cell.sum(axis=-1))
        gen = self._rng if rng is None else np.random.default_rng(rng)
        if noise is not None:
            i_out = i_out + np.sqrt(noise[0] + np.abs(v) @ noise[1]) * gen.standard_normal(i_out.shape)
        v_sense, sat = self.sense.output(i_out, g_source=self._g_source, rng=gen)
        return ReadResult(i_out, np.broadcast_to(v_sense, i_out.shape), np.broadcast_to(sat, i_out.shape), p_src)

    def _check_current_noise(self, current_noise):
        if current_noise is None:
            return None
        m, n = self.shape
        try:
            thermal, shot = current_noise
        except (TypeError, ValueError):
            raise InputError("current_noise: expected a pair (thermal (N,), shot (M, N)) of variances") from None
        return (as_array("current_noise thermal", thermal, unit="A**2", low=0.0, shape=(n,)),
                as_array("current_noise shot", shot, unit="A**2/V", low=0.0, shape=(m, n)))

    def _phases(self, x_int, input_bits, signed, rng, current_noise=None):
        bits = self.card["input_bits"] if input_bits is None else input_bits
        digits, weights, signs = slice_inputs(x_int, bits, self.dac.bits, signed)
        if digits.ndim != 3 or digits.shape[2] != self.shape[0]:
            raise InputError(f"x_int: expected (batch, {self.shape[0]}), got {np.shape(x_int)}")
        v = self.dac.convert(digits)
        res = self.read(v.reshape(-1, self.shape[0]), rng=rng, current_noise=current_noise)
        return v, weights, signs, res

    # ----------------------------------------------------------------- ADC range
    def set_adc_range(self, lo, hi) -> Tile:
        """Set the ADC input range (sense-output volts), per column or global; returns self."""
        self.adc = self.adc.with_range(lo, hi)
        return self

    def calibrate(self, x_batch, input_bits: int | None = None, signed: bool = False, method: str = "minmax",
                  percentile: float = 99.9, per_column: bool = True, rng=None) -> Tile:
        """Set per-column (or global) ADC ranges from the sense outputs of a calibration batch.

        The two columns of a differential pair share one range so that their difference is exact
        in codes.  Returns self.
        """
        _, _, _, res = self._phases(x_batch, input_bits, signed, rng)
        v = np.ascontiguousarray(res.v_sense)
        if self.differential:
            v = v.reshape(v.shape[0], -1, 2).transpose(0, 2, 1).reshape(-1, v.shape[1] // 2)
        cal = self.adc.calibrate(v, method=method, per_column=per_column, percentile=percentile)
        lo, hi = (np.repeat(a, 2) if self.differential and a.size > 1 else a for a in (cal.lo, cal.hi))
        self.adc = self.adc.with_range(lo, hi)
        return self

    # ----------------------------------------------------------------- digital MVM
    def mvm(self, x_int, input_bits: int | None = None, signed: bool = False, rng=None, current_noise=None):
        """Digital MVM through the analog tile.

        Parameters
        ----------
        x_int : array_like of int, (batch, M) or (M,)
            Inputs in ``[0, 2**input_bits)`` (or ``[-2**(b-1), 2**(b-1))`` when ``signed``).
        input_bits : int, optional
            Input resolution (default: the card's ``input_bits``).
        signed : bool
            Signed inputs run as two phases (positive and negative magnitudes).
        rng : int or numpy.random.Generator, optional
            Read noise; default the tile's own seeded generator.
        current_noise : (ndarray, ndarray), optional
            The cells' current noise on every read (see :meth:`read`).

        Returns
        -------
        y : ndarray of int64, (batch, N) or (batch, N/2) for differential tiles (no batch axis
            for a 1-D ``x_int``)
            Shift-added ADC codes (differences of the pair codes when differential).
        record : xarray.Dataset
            ``energy_array``, ``energy_dac``, ``energy_sense``, ``energy_adc``, ``energy_digital``,
            ``energy_total`` (batch,) in J, ``latency`` (s) per MVM, plus ``saturated``
            (sense-amp saturation count per batch item).
        """
        single = np.ndim(x_int) == 1
        v, weights, signs, res = self._phases(np.atleast_2d(x_int) if single else x_int, input_bits, signed, rng,
                                              current_noise)
        gen = self._rng if rng is None else np.random.default_rng(rng)
        codes = self.adc.convert(res.v_sense, rng=gen if self._adc_noisy else None)
        phases, batch = v.shape[:2]
        y = shift_add(codes.reshape(phases, batch, -1), weights, signs)
        if self.differential:
            y = y[:, 0::2] - y[:, 1::2]
        record = self.energy.record(res.p_source.reshape(phases, batch), v, self.shape[1])
        record["saturated"] = (("batch",), res.saturated.reshape(phases, batch, -1).sum(axis=(0, 2)),
                               {"units": "1", "long_name": "sense-amplifier outputs clipped at the swing"})
        return (y[0] if single else y), record

    @property
    def _adc_noisy(self) -> bool:
        return self.adc.noise_lsb > 0 or (self.adc.kind == "sar" and self.adc.comparator_noise_lsb > 0)

    def _place_sum(self, input_bits, signed) -> int:
        bits = self.card["input_bits"] if input_bits is None else input_bits
        _, weights, signs = slice_inputs(np.zeros(1, dtype=np.int64), bits, self.dac.bits, signed)
        return int((weights * signs).sum())

    def codes_to_current(self, y, input_bits: int | None = None, signed: bool = False) -> np.ndarray:
        """Estimate (A) of ``sum_p s_p w_p i_p`` — the column currents recombined like the codes —
        from the output ``y`` of :meth:`mvm` with the same ``input_bits`` and ``signed``."""
        y = as_array("y", y, ndim=(1, 2))
        lsb, lo = self.adc.lsb, np.broadcast_to(self.adc.lo, (self.shape[1],))
        lsb = np.broadcast_to(lsb, (self.shape[1],))
        if self.differential:
            v = lsb[0::2] * y  # pair ranges are shared: the offsets cancel
        else:
            v = lo * self._place_sum(input_bits, signed) + lsb * y
        return self.sense.input_current(v)

    def codes_to_dot(self, y, input_bits: int | None = None, signed: bool = False) -> np.ndarray:
        """Estimate (S) of ``G.T @ x`` (``(G+ - G-).T @ x`` for differential tiles): the recombined
        current divided by the DAC's voltage step."""
        return self.codes_to_current(y, input_bits, signed) / self.dac.lsb
