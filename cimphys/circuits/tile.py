"""Tiles: crossbars with their periphery (DACs, sense amplifiers, ADCs), one or many at once.

:class:`TileStack` is the one tile model of cimphys: a stack of tiles of one card, each with
its own conductances and its own seeded mismatch, read together.  ``cimphys run``, the exports,
``cimphys crossbar`` and a user's :class:`Tile` (a stack of one) all use it, so a card means the
same thing everywhere.  Usage::

    from cimphys.circuits.tile import Tile, TileStack
    tile = Tile("isaac_128x128", G, seed=0)        # G: (M, N) S
    tile.calibrate(x_cal, input_bits=8)            # per-channel ADC ranges from a calibration batch
    y, record = tile.mvm(x_int, input_bits=8)      # x_int (batch, M) integers -> y (batch, outputs) int64
    dot = tile.codes_to_dot(y, input_bits=8)       # S: estimate of G.T @ x (G+ - G- when differential)
    stack = TileStack("isaac_128x128", G_stack, seeds=[0, 1, 2])   # (3, M, N): tile k == Tile(..., seed=k)

Signal chain of :meth:`TileStack.mvm` (each step vectorised over the tiles):

1. :func:`~cimphys.circuits.dac.slice_inputs` cuts ``x_int`` into ``dac.bits``-wide digits (one array
   read per digit; signed inputs as a positive and a negative phase).
2. Each word line's :class:`~cimphys.circuits.dac.DAC` turns its digit into a voltage (per-driver
   mismatch, INL, settling).
3. The crossbar is solved with the sense amplifier's input resistance as its ``r_sense``: linear
   cells through each tile's transfer matrix ``T`` and input admittance ``Y``
   (:mod:`cimphys.circuits.tile_characterise`; source power ``v.Y.v``), nonlinear cells by a
   Newton solve per read.  The cells' own read noise (thermal, shot, 1/f) is added per column.
4. The sensing scheme (:class:`~cimphys.circuits.tile_design.TileDesign`) forms each sense
   amplifier's input current; the amplifier gives a voltage (per-channel offset, seeded noise,
   saturation), each column ADC a code (its own mismatch draw; channels that share an ADC share
   it), and the digital back end shift-adds (and subtracts digital pairs).
5. :class:`~cimphys.circuits.energy.EnergyModel` turns the reads into energy and latency.

For linear cells, steps 3 and 4 are one Numba pass per read call
(:func:`~cimphys.circuits.tile_read.tile_reads`: product, cell noise, sense amplifier and, for a
noiseless ideal or SAR converter, the code and the shift-add), tile by tile over the cores.

Seeds: tile ``k`` of a stack with seed ``s_k`` makes exactly the draws of ``Tile(card, G_k,
seed=s_k)``: its static draws (DAC drivers, sense offsets, ADC converters) from ``s_k`` and the
card's seeds, its read noise from its own generator (seeded by ``s_k``) in the order cell noise,
sense noise, ADC noise, so the stack and a single tile give the same numbers, exactly.  For the
cell noise the generator gives one 64-bit key per read call; the normal of read ``b`` and channel
``c`` is a function of (key, b, c) made in the read kernel
(:mod:`~cimphys.circuits.counter_normals`), so it does not depend on the thread count either.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ..cards import Card
from ..checks import as_array
from ..errors import InputError
from .adc import ADC
from .crossbar import Crossbar
from .dac import DAC, shift_add, slice_inputs
from .tile_characterise import characterisation_path, characterise_stack
from .tile_design import SPEC, TileDesign, weights_to_conductances
from .tile_operands import ReadOperands
from .tile_ranges import CALIBRATION_METHODS, AdcRanges
from . import tile_read
from .tile_read import tile_reads
from .tile_report import StackReport, characterise_stack_reported, newton_reads, stack_report

__all__ = ["SPEC", "CALIBRATION_METHODS", "ReadResult", "Tile", "TileStack", "weights_to_conductances"]

class ReadResult(NamedTuple):
    """One batch of array reads: sense-amplifier input currents, outputs and source power."""

    i_out: np.ndarray  # (batch, tiles, channels) A: column currents as the sense amplifiers take them
    v_sense: np.ndarray  # (batch, tiles, channels) V
    saturated: np.ndarray  # (batch, tiles, channels) bool
    p_source: np.ndarray  # (batch,) W: delivered by the word-line sources, summed over the tiles


def _child_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, dtype=np.uint64)[0]) >> 1


@functools.cache
def _place_sum(bits: int, signed, dac_bits: int) -> int:
    """``sum_p s_p w_p`` over the phases that :func:`~cimphys.circuits.dac.slice_inputs` cuts."""
    _, weights, signs = slice_inputs(np.zeros(1, dtype=np.int64), bits, dac_bits, signed)
    return int((weights * signs).sum())


def _tile_seeds(seed) -> tuple[int, int, int, int]:
    """(dac, sense, adc, noise) seeds of one tile, from its seed."""
    return tuple(_child_seed(c) for c in np.random.SeedSequence([int(seed)]).spawn(4))


class TileStack(ReadOperands, AdcRanges):
    """Tiles of one ``tile`` card, read together.

    Parameters
    ----------
    card : Card, str or TileDesign
        A ``tile`` circuit card, its name/path, or its :class:`TileDesign`.
    conductances : array_like, (tiles, rows, cols), S
        Cell conductances, nominally within ``[g_min_s, g_max_s]`` (programmed cells may stray
        beyond; more than ``100 g_max_s`` is refused as a unit error); None when ``cells`` carry
        their own parameters.
    seeds : int or sequence of int
        One seed per tile (an int: ``seeds + k`` for tile ``k``).
    cells : sequence of TwoTerminalCell, optional
        Nonlinear cells per tile (a Newton solve per read); None: linear cells of ``conductances``.
    characterisation : (ndarray, ndarray), optional
        ``(T (tiles, N, M), Y (tiles, M, M))`` of these conductances (e.g. from a cache), to skip
        the solve.
    cell_noise : (ndarray, ndarray, ndarray), optional
        The cells' read-noise coefficients per tile: thermal ``(tiles, M, N)`` A**2, shot
        ``(tiles, M, N)`` A**2/V and 1/f ``(tiles, M, N)`` A**2/V**2; on every read column ``j``
        gets a Gaussian current of variance ``sum_i thermal + |v_i| shot + v_i**2 flicker``
        (for drives of 0 or ``V``, and pulse widths whose cell conducts at ``V`` for a fraction
        ``v_i / V`` of the read, ``sum_i thermal + v_i (shot + V flicker)``).
    """

    def __init__(self, card, conductances, *, seeds=0, cells=None, characterisation=None, cell_noise=None):
        d = card if isinstance(card, TileDesign) else TileDesign(card)
        # programmed cells may land above g_max (overshoot, a stuck-on cell of a wider device);
        # a hundred times g_max is no programming error but a unit error
        self.g = None if conductances is None else as_array(
            "conductances", conductances, unit="S", ndim=3, low=0.0, high=100.0 * d.g_max)
        if self.g is not None and self.g.shape[1:] != d.shape:
            raise InputError(f"conductances: expected (tiles, {d.shape[0]}, {d.shape[1]}), got {self.g.shape}")
        self.cells = None if cells is None else list(cells)
        if self.g is None and self.cells is None:
            raise InputError("conductances: expected an array (tiles, rows, cols), or cells= for nonlinear cells")
        n_tiles = self.g.shape[0] if self.g is not None else len(self.cells)
        if self.cells is not None and len(self.cells) != n_tiles:
            raise InputError(f"cells: expected one cell model per tile ({n_tiles}), got {len(self.cells)}")
        self._setup(d, n_tiles, seeds)
        self._char = None if characterisation is None else self._check_char(characterisation)
        self._cell_noise = None if cell_noise is None else self._fold_noise(cell_noise, stacked=True)
        col_g = (np.zeros((self.n_tiles, self.shape[1])) if self.g is None else self.g.sum(axis=1))
        self._g_source = np.abs(d.subtraction) @ col_g.T  # (channels, tiles): Norton conductance per amplifier
        self._g_source = np.ascontiguousarray(self._g_source.T)

    def _setup(self, design: TileDesign, n_tiles: int, seeds) -> None:
        """What every stack holds besides its cells: the card, the tiles' seeds and static draws,
        the wires, the energy model and empty read caches."""
        self.design = d = design
        self.card: Card = d.card
        self.shape = d.shape
        self.differential, self.mode = d.differential, d.mode
        self.n_tiles = n_tiles
        seeds = np.arange(n_tiles) + int(seeds) if np.ndim(seeds) == 0 else np.asarray(seeds)
        if seeds.shape != (n_tiles,) or seeds.dtype.kind not in "iu" or (seeds < 0).any():
            raise InputError(f"seeds: expected {n_tiles} non-negative integers, got {seeds!r}")
        self.seeds = seeds.astype(np.int64)
        self._draw_static()
        self.wires = d.wires
        self.characterisation_report: StackReport | None = None  # with the characterisation: tile_report
        self.newton_log: list = []  # (tile, TileReport) per batch of Newton reads: tile_report.newton_reads
        self.energy = d.energy()
        self.compacted = False  # compact(): only what reads need, in their precision
        self._sensed, self._col, self._casts, self._noise_at = None, None, {}, {}
        self._sensing, self._converting = None, None  # sense and converter terms of the reads, made once

    @classmethod
    def from_read_state(cls, card, seeds, state: dict, report: StackReport) -> TileStack:
        """A compacted stack from :meth:`~cimphys.circuits.tile_operands.ReadOperands.read_state`
        of one built from conductances (a disk cache of programmed, characterised tiles): it reads
        bit for bit like that stack after :meth:`compact` (tested), without its cells."""
        design = card if isinstance(card, TileDesign) else TileDesign(card)
        stack = cls.__new__(cls)
        stack.g, stack.cells = None, None
        stack._setup(design, len(np.atleast_1d(seeds)), seeds)
        stack._restore(state)
        stack.characterisation_report = report
        return stack

    # ----------------------------------------------------------------- static draws
    def _draw_static(self) -> None:
        d, m, c = self.design, self.shape[0], self.design.channels
        per = [_tile_seeds(s) for s in self.seeds]
        dacs = [DAC.from_parameters(d.dac, v_max=d.v_read, t_read=d.t_read, seed=s[0] ^ d.dac["seed"], drivers=m)
                for s in (per if d.dac["mismatch_sigma"] else per[:1])]  # no mismatch: every seed, one DAC
        self.dac = dacs[0]
        self._dac_levels = None if self.dac.identical else np.stack([x.levels for x in dacs])  # (tiles, M, L)
        sigma = float(d.sense["offset_sigma_v"])
        offsets = np.stack([np.random.default_rng(s[1] ^ d.sense["seed"]).normal(0.0, sigma, c) if sigma
                            else np.zeros(c) for s in per])
        self.sense = d.sense_amplifier(offsets.reshape(-1))
        adcs, share = d.adcs, int(d.energy_table["cols_per_adc"])
        converters = tuple((s[2] ^ d.adc["seed"], k) for s in per for k in range(adcs))
        which = (np.arange(self.n_tiles)[:, None] * adcs + np.arange(c)[None, :] // share).reshape(-1)
        full = d.transimpedance * d.full_scale_current()
        lo = 0.0 if d.mode == "column" else -full
        self.adc: ADC = d.adc_prototype(converter_seeds=converters, column_converter=which).with_range(lo, full)
        self._gens = [np.random.default_rng(s[3]) for s in per]
        self._calibrated = False

    # ----------------------------------------------------------------- characterisation
    @property
    def linear(self) -> bool:
        return self.cells is None

    @property
    def binary_drivers(self) -> bool:
        """Whether every word line is driven to 0 V or one common level: the source power is then
        ``V sum_j i_out[j]`` and no input admittance ``Y`` is needed
        (:func:`~cimphys.circuits.tile_characterise.characterise`)."""
        return self.design.binary_drivers

    def _check_char(self, char) -> tuple[np.ndarray, np.ndarray | None]:
        m, n = self.shape
        t, y = char[:2]  # (T, Y) or (T, Y, StackReport)
        self.characterisation_report = char[2] if len(char) > 2 else None
        if y is None and not self.binary_drivers:
            raise InputError("characterisation: these drivers have several levels (or mismatch); Y is needed")
        return (as_array("characterisation T", t, shape=(self.n_tiles, n, m)),
                None if y is None else as_array("characterisation Y", y, shape=(self.n_tiles, m, m)))

    def _characterised(self) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.linear:
            raise InputError("cell: only tiles of linear cells have a transfer matrix")
        if self.compacted:
            raise InputError("characterisation: this stack was compacted (compact() dropped T); store it before")
        if self._char is None:
            t, y, self.characterisation_report = characterise_stack_reported(self.g, self.wires,
                                                                             not self.binary_drivers)
            self._char = (t, y)
        return self._char

    @property
    def solver_path(self) -> str:
        """How reads are solved: ``"newton"`` (a solve per read) or how ``T`` is found (``tile_characterise.PATHS``)."""
        if not self.linear:
            return "newton"
        return characterisation_path(self.shape, self.wires, admittance=not self.binary_drivers)

    solve_report = property(lambda self: stack_report(self, self._characterised), doc="How this stack's reads are "
                            "solved, and how well (:class:`~cimphys.circuits.tile_report.StackReport`).")

    @property
    def characterisation(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T (tiles, N, M), Y (tiles, M, M))`` in S, computed once (linear cells only)."""
        return self._characterised()

    @property
    def sensed_transfer(self) -> np.ndarray:
        """``S T`` (tiles, channels, M), S: sense-amplifier input current per word-line volt."""
        if self._sensed is None:
            self._characterised()  # refused once compacted
            self._sensed = np.ascontiguousarray(self.design.to_channels(self._characterised()[0], axis=1))
        return self._sensed

    def _fold_noise(self, noise, stacked: bool):
        """Cell noise coefficients per channel: (thermal (tiles, C), shot, flicker (tiles, M, C))."""
        m, n = self.shape
        lead = (self.n_tiles,) if stacked else ()
        try:
            parts = tuple(noise)
        except TypeError:
            raise InputError("cell_noise: expected (thermal, shot, flicker) coefficient arrays") from None
        names = ("thermal", "shot", "flicker")
        if len(parts) == 2:  # (thermal per column (N,), shot (M, N)): Tile.read's current_noise
            thermal, shot = (as_array(f"current_noise {k}", a, low=0.0, shape=lead + s) for k, a, s in
                             zip(names, parts, ((n,), (m, n))))
            flicker = np.zeros(lead + (m, n))
        elif len(parts) == 3:
            thermal, shot, flicker = (as_array(f"cell_noise {k}", a, low=0.0, shape=lead + (m, n))
                                      for k, a in zip(names, parts))
            thermal = thermal.sum(axis=-2)  # per column
        else:
            raise InputError("current_noise: expected a pair (thermal (N,), shot (M, N)) of variances")
        folded = tuple(self.design.to_channels(a, variance=True) for a in (thermal, shot, flicker))
        return folded if stacked else tuple(a[None] for a in folded)

    # ----------------------------------------------------------------- the analog part
    def _generators(self, rng) -> list:
        if rng is None:
            return self._gens
        if self.n_tiles == 1:
            return [np.random.default_rng(rng)]
        if isinstance(rng, np.random.Generator):
            seq = rng.bit_generator.seed_seq
        else:
            seq = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        return [np.random.default_rng(s) for s in seq.spawn(self.n_tiles)]

    def _admittance(self) -> np.ndarray:
        """``Y`` (tiles, M, M), solved now if the characterisation left it out."""
        t, y = self._characterised()
        if y is None:
            y = characterise_stack(self.g, self.wires, admittance=True)[1]
            self._char = (t, y)
        return y

    def read(self, v_in, rng=None, current_noise=None, *, _gens=None, _from_dac=False, _dtype=np.float64) -> ReadResult:
        """Solve reads for word-line voltages ``v_in`` and sense every channel.

        ``v_in`` is ``(batch, M)`` (every tile driven alike) or ``(batch, tiles, M)``, in V (or
        ``(batch, drives, M)`` with ``drives`` dividing the tiles: one drive per group of
        consecutive tiles).
        ``current_noise``, optional, adds the cells' current noise on this read, like the
        ``cell_noise`` of the stack (thermal ``(N,)`` A**2 per column and shot ``(M, N)`` A**2/V
        for a single tile, or the three coefficient arrays).
        """
        m, nt = self.shape[0], self.n_tiles
        v = as_array("v_in", v_in, unit="V", ndim=(2, 3))
        if v.shape[-1] != m or (v.ndim == 3 and nt % v.shape[1]):
            raise InputError(f"v_in: expected (batch, {m}) or (batch, {nt}, {m}), got {v.shape}")
        gens = self._generators(rng) if _gens is None else _gens
        args, p_src = self._read_terms(v, gens, current_noise, _from_dac, _dtype)
        i, v_sense, sat = tile_reads(*args[:-1], currents=args[-1])
        return ReadResult(i, v_sense, sat, p_src)

    def _read_terms(self, v, gens, current_noise, from_dac: bool, dtype):
        """The arguments of :func:`~cimphys.circuits.tile_read.tile_reads` for reads ``v``
        (reads, M) or (reads, tiles, M), and the summed source power of each read (reads,)."""
        nt, c = self.n_tiles, self.design.channels
        vt = v[None] if v.ndim == 2 else np.ascontiguousarray(v.transpose(1, 0, 2))  # (drives, reads, M)
        currents, binary = None, False
        if self.linear:
            operand = self._operand(dtype)
            y = self._char[1] if self.compacted else self._characterised()[1]
            peak = self.dac.peak
            binary = self.binary_drivers and (from_dac or (self.dac.kind == "voltage" and np.all((v == 0) | (v == peak))))
            if y is None and not binary:
                y = self._admittance()
        if 1 < vt.shape[0] < nt and not (self.linear and binary):  # Y and Newton reads take a drive per tile
            vt = np.repeat(vt, nt // vt.shape[0], axis=0)
        if self.linear:
            if binary:  # binary drivers (or pulse widths): P = V sum_j i_out[j], exactly
                col = self._column_sums()  # (tiles, M)
                if vt.shape[0] == 1:
                    p_src = vt @ col.sum(axis=0)
                elif vt.shape[0] == nt:
                    p_src = np.einsum("tbm,tm->b", vt, col)
                else:  # one drive per group of tiles
                    p_src = np.einsum("dbm,dm->b", vt, col.reshape(vt.shape[0], -1, col.shape[1]).sum(axis=1))
                p_src = peak * np.asarray(p_src).reshape(-1)
            else:
                y_used = y.sum(axis=0, keepdims=True) if vt.shape[0] == 1 else y
                p_src = np.einsum("tbm,tbm->b", np.matmul(vt, y_used),
                                  np.broadcast_to(vt, (y_used.shape[0],) + vt.shape[1:]))
        else:
            currents, p_src = newton_reads(self, vt)
            operand = np.zeros((nt, 1, c), dtype=dtype)
        noise, keys = self._noise_terms(current_noise, self.dac.peak if self.linear and binary else None, gens, dtype)
        sigma = float(getattr(self.sense, "noise_v_rms", 0.0))
        sense_noise = None if sigma == 0.0 else np.stack([g.normal(0.0, sigma, (v.shape[0], c)) for g in gens],
                                                         axis=1).reshape(-1, nt * c)
        return (vt, operand, noise, keys, self._sense_terms(), sense_noise, currents), p_src

    def _sense_terms(self) -> tile_read.SenseTerms:
        """The amplifiers' terms of :func:`~cimphys.circuits.tile_read.tile_reads`, made once."""
        if self._sensing is None:
            self._sensing = tile_read.sense_terms(self.sense, self._g_source.reshape(-1), self._g_source.size)
        return self._sensing

    def _adc_terms(self):
        """``(ADC.kernel_terms or None, lsb (tiles, C), lo (tiles, C))`` of the current converter
        ranges, made once per range (:meth:`set_adc_range` makes a new ADC)."""
        if self._converting is None or self._converting[0] is not self.adc:
            nt, c = self.n_tiles, self.design.channels
            self._converting = (self.adc, self.adc.kernel_terms(nt * c),
                                np.broadcast_to(self.adc.lsb, (nt * c,)).reshape(nt, c),
                                np.broadcast_to(self.adc.lo, (nt * c,)).reshape(nt, c))
        return self._converting[1:]

    def _noise_terms(self, current_noise, peak, gens, dtype):
        """The cells' noise operands of :func:`~cimphys.circuits.tile_read.tile_reads` and each
        tile's key of this call's normals (drawn from its generator); ``(None, None)`` without
        noise.  ``peak``: the common drive level of binary drives (one combined operand), or None."""
        nt = self.n_tiles
        noise = self._fold_noise(current_noise, stacked=nt > 1 or np.ndim(current_noise[0]) == 3) \
            if current_noise is not None else self._cell_noise
        if noise is None:
            return None, None
        keys = np.array([g.bit_generator.random_raw() for g in gens], dtype=np.uint64)  # = g.integers(0, 2**64, uint64)
        if peak is not None and noise is self._cell_noise:
            return (tile_read.BINARY_NOISE, self._noise_operand(peak, dtype), None, noise[0]), keys
        if noise[1] is None:
            raise InputError("read: this stack keeps the cell noise at its drive level only (compact()); "
                             "drives other than 0 and that level need the separate coefficients")
        if peak is not None:
            return (tile_read.BINARY_NOISE, noise[1] + peak * noise[2], None, noise[0]), keys
        return (tile_read.SEPARATE_NOISE, noise[1], noise[2], noise[0]), keys

    def _drives(self, x_int, input_bits, signed):
        """Word-line voltages of every read (phases, batch, [tiles,] M), and the shift-add weights
        and signs of the phases (:func:`~cimphys.circuits.dac.slice_inputs`)."""
        bits = self.card["input_bits"] if input_bits is None else input_bits
        digits, weights, signs = slice_inputs(x_int, bits, self.dac.bits, signed)
        if digits.shape[2:] != self._drive_shape:
            raise InputError(f"x_int: expected (batch, {', '.join(map(str, self._drive_shape))}), got {np.shape(x_int)}")
        return self._voltages(digits), weights, signs

    @property
    def _drive_shape(self) -> tuple:
        """An input's shape after its batch axis: one drive, (M,), for every tile."""
        return self.shape[:1]

    def _voltages(self, digits: np.ndarray) -> np.ndarray:
        """Word-line voltages of DAC digits ``(..., M)``: shared ``(..., M)`` or ``(..., tiles, M)``."""
        if self._dac_levels is None:
            return self.dac.convert(digits)
        m = self.shape[0]
        return self._dac_levels[np.arange(self.n_tiles)[:, None], np.arange(m)[None, :], digits[..., None, :]]

    def _phases(self, x_int, input_bits, signed, rng, current_noise=None):
        v, weights, signs = self._drives(x_int, input_bits, signed)
        gens = self._generators(rng)
        # digital reads: the array's operands in tile_read.PRODUCT_DTYPE
        res = self.read(v.reshape((-1,) + v.shape[2:]), current_noise=current_noise, _gens=gens, _from_dac=True,
                        _dtype=tile_read.PRODUCT_DTYPE)
        return v, weights, signs, res, gens

    # ----------------------------------------------------------------- digital MVM
    def mvm(self, x_int, input_bits: int | None = None, signed: bool = False, rng=None, current_noise=None):
        """Digital MVM through every tile: ``(y (batch, tiles, outputs) int64, record)``.

        ``y`` holds the shift-added ADC codes (differences of the pair codes for digital pairs);
        ``record`` the energy per MVM summed over the tiles (``energy_*``, (batch,), J) and the
        latency of one MVM (the tiles work in parallel, s).  ``rng``: None uses each tile's own
        seeded generator; a seed or Generator gives each tile a generator spawned from it.
        """
        y, parts = self.mvm_arrays(x_int, input_bits, signed, rng, current_noise)
        record = self.energy.record(*parts[:3], tiles=self.n_tiles)
        record["saturated"] = (("batch",), parts[3], {"units": "1",
                                                      "long_name": "sense-amplifier outputs clipped at the swing"})
        return y, record

    def mvm_arrays(self, x_int, input_bits: int | None = None, signed: bool = False, rng=None, current_noise=None):
        """:meth:`mvm` with the record's inputs as arrays: ``(y, (p_source (phases, batch) W,
        v_rows, channels, saturated (batch,)))`` (:meth:`EnergyModel.record
        <cimphys.circuits.energy.EnergyModel.record>` takes the first three), for callers that
        read often and sum the energy themselves.

        With linear cells and a converter :func:`~cimphys.circuits.tile_read.tile_reads` can run
        (noiseless, ideal or SAR), the reads, conversions and shift-add are one kernel pass;
        otherwise the sense outputs go through :meth:`ADC.convert
        <cimphys.circuits.adc.ADC.convert>`.  Both give the same codes (tested).
        """
        single = np.ndim(x_int) == 1
        v, weights, signs = self._drives(np.atleast_2d(x_int) if single else x_int, input_bits, signed)
        gens = self._generators(rng)
        nt, c = self.n_tiles, self.design.channels
        phases, batch = v.shape[:2]
        flat = v.reshape((-1,) + v.shape[2:])
        terms = self._adc_terms()[0]
        if self.linear and current_noise is None and terms is not None:
            args, p_src = self._read_terms(flat, gens, None, True, tile_read.PRODUCT_DTYPE)
            y, clipped = tile_reads(*args[:-1], adc=(terms, np.asarray(signs) * np.asarray(weights), batch))
        else:
            res = self.read(flat, current_noise=current_noise, _gens=gens, _from_dac=True,
                            _dtype=tile_read.PRODUCT_DTYPE)
            p_src = res.p_source
            vs = res.v_sense.reshape(-1, nt * c)
            noise = None
            if self.adc.noisy:
                draws = [self.adc.draw_noise((vs.shape[0], c), g) for g in gens]
                noise = tuple(None if draws[0][k] is None else np.stack([d[k] for d in draws], axis=1)
                              .reshape((vs.shape[0], nt * c) + draws[0][k].shape[2:]) for k in range(2))
            codes = self.adc.convert(vs, noise=noise)
            y = shift_add(codes.reshape(phases, batch, nt, c), weights, signs)
            clipped = res.saturated.reshape(phases, batch, -1).sum(axis=(0, 2))
        if self.differential and self.mode == "column":
            y = y[..., 0::2] - y[..., 1::2]
        v_rows = v if v.ndim == 4 else v[:, :, None, :]
        if self.dac.kind == "pwm":  # each driven word line swings to v_read once per read
            v_rows = (v_rows > 0.0) * self.dac.peak
        return (y[0] if single else y), (p_src.reshape(phases, batch), v_rows, c, clipped)

    def _place_sum(self, input_bits, signed) -> int:
        """``sum_p s_p w_p`` of the phases of ``input_bits`` inputs."""
        return _place_sum(self.card["input_bits"] if input_bits is None else input_bits, signed, self.dac.bits)

    def codes_to_current(self, y, input_bits: int | None = None, signed: bool = False) -> np.ndarray:
        """Estimate (A) of ``sum_p s_p w_p i_p`` -- the sense input currents recombined like the
        codes -- from ``y`` of :meth:`mvm` (same ``input_bits`` and ``signed``), ``(..., tiles, outputs)``."""
        _, lsb, lo = self._adc_terms()
        y = np.asarray(y)
        if self.differential and self.mode == "column":
            v = lsb[:, 0::2] * y  # pair ranges are shared: the offsets cancel
        else:
            v = lo * self._place_sum(input_bits, signed) + lsb * y
        return self.sense.input_current(v)

    def codes_to_dot(self, y, input_bits: int | None = None, signed: bool = False) -> np.ndarray:
        """Estimate (S) of ``G.T @ x`` (``(G+ - G-).T @ x`` for pairs): the recombined current
        divided by the DAC's voltage step."""
        return self.codes_to_current(y, input_bits, signed) / self.dac.lsb


class Tile(TileStack):
    """One crossbar tile with its drivers, sense amplifiers and ADCs: a :class:`TileStack` of one.

    Parameters
    ----------
    card : Card or str
        A ``tile`` circuit card, or its name/path.
    conductances : array_like, (rows, cols), S
        Cell conductances within ``[0, g_max_s]``; may be None when ``cell`` carries its parameters.
    seed : int
        Seeds every static mismatch draw and the tile's read-noise generator.
    cell : TwoTerminalCell, optional
        Nonlinear cells (full Newton solve per read); None: linear cells of ``conductances``.
    characterisation : dict, optional
        ``{"T": (N, M), "Y": (M, M) or None}`` of an identical tile (for on-disk caches; ``Y``
        may be None for binary drivers).
    cell_noise : (ndarray, ndarray, ndarray), optional
        The cells' read-noise coefficients ``(M, N)`` each (see :class:`TileStack`).
    """

    def __init__(self, card, conductances, *, seed: int = 0, cell=None, characterisation=None, cell_noise=None):
        g = None if conductances is None else np.asarray(conductances, dtype=float)
        design = card if isinstance(card, TileDesign) else TileDesign(card)
        if g is not None and g.shape != design.shape:
            raise InputError(f"conductances: expected shape {design.shape}, got {g.shape}")
        y = None if characterisation is None else characterisation.get("Y")
        char = None if characterisation is None else (np.asarray(characterisation["T"])[None],
                                                      None if y is None else np.asarray(y)[None])
        noise = None if cell_noise is None else tuple(np.asarray(a)[None] for a in cell_noise)
        super().__init__(design, None if g is None else g[None], seeds=[int(seed)],
                         cells=None if cell is None else [cell], characterisation=char, cell_noise=noise)
        self.crossbar = Crossbar(None if cell is not None else g, r_wl=self.wires.r_wl, r_bl=self.wires.r_bl, r_driver=self.wires.r_driver,
                                 r_sense=self.wires.r_sense, cell=cell, shape=self.shape)

    @classmethod
    def from_card(cls, card, conductances, **kwargs) -> Tile:
        """Same as ``Tile(card, conductances, **kwargs)``."""
        return cls(card, conductances, **kwargs)

    def characterisation(self) -> dict:
        """Transfer matrix ``T`` (N, M, S; ``i_out = T v``) and input admittance ``Y`` (M, M, S;
        source currents ``Y v``) of the linear array, computed once."""
        return {"T": self._characterised()[0][0], "Y": self._admittance()[0]}

    def read(self, v_in, rng=None, current_noise=None, **kwargs) -> ReadResult:
        """As :meth:`TileStack.read` for one tile: arrays ``(batch, channels)``."""
        r = super().read(v_in, rng, current_noise, **kwargs)
        return ReadResult(r.i_out[:, 0], r.v_sense[:, 0], r.saturated[:, 0], r.p_source)

    def _phases(self, x_int, input_bits, signed, rng, current_noise=None):
        v, weights, signs, res, gens = super()._phases(x_int, input_bits, signed, rng, current_noise)
        return v, weights, signs, ReadResult(res.i_out[:, None], res.v_sense[:, None], res.saturated[:, None],
                                             res.p_source), gens

    def mvm(self, x_int, input_bits: int | None = None, signed: bool = False, rng=None, current_noise=None):
        """Digital MVM through the tile: ``(y (batch, outputs) int64, record)`` (see :meth:`TileStack.mvm`)."""
        y, record = super().mvm(x_int, input_bits, signed, rng, current_noise)
        return y[..., 0, :], record

    def codes_to_current(self, y, input_bits: int | None = None, signed: bool = False) -> np.ndarray:
        y = as_array("y", y, ndim=(1, 2))
        return super().codes_to_current(y[..., None, :], input_bits, signed)[..., 0, :]
