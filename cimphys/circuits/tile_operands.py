"""What a tile stack's reads need, made once and kept in the precision the reads use.

:class:`ReadOperands` is the part of :class:`~cimphys.circuits.tile.TileStack` that prepares
the operands of every read from the characterisation: ``S T`` in the product's dtype, the column
sums of ``T`` (the source power of binary drivers), and the cells' shot and 1/f noise
coefficients combined at the drive level.  :meth:`ReadOperands.compact` keeps only those, in
``tile_read.PRODUCT_DTYPE``, and drops the rest (``T``, the float64 ``S T``): a stack's memory for
reads shrinks from float64 ``T`` and ``S T`` and three noise arrays to one float32 operand each,
with the same numbers bit for bit.  Layer-level users that hold many stacks (the transformer
runs) call it once the characterisation is stored.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import tile_read

__all__ = ["STATE_PARTS", "ReadOperands"]

#: What :meth:`ReadOperands.read_state` holds: ``S T`` transposed (tiles, M, C) and the combined
#: noise operand (tiles, M, C) in ``PRODUCT_DTYPE``, the column sums of ``T`` (tiles, M), the
#: thermal noise (tiles, C) and the amplifiers' Norton conductances (tiles, C), float64.
STATE_PARTS = ("operand", "column_sums", "noise_operand", "thermal", "g_source")


class ReadOperands:
    """Read operands of :class:`~cimphys.circuits.tile.TileStack` (a mixin: it reads the stack's
    ``linear``, ``binary_drivers``, ``dac``, ``sensed_transfer``, ``_characterised``, ``_char``
    and ``_cell_noise``)."""

    def _operand(self, dtype) -> np.ndarray:
        """``S T`` transposed, (tiles, M, channels), in ``dtype``: made once per dtype."""
        dt = np.dtype(dtype)
        if dt not in self._casts:
            if self.compacted:
                raise InputError(f"read: this stack keeps {np.dtype(tile_read.PRODUCT_DTYPE).name} reads only (compact()); "
                                 f"got a {dt.name} read")
            self._casts[dt] = np.ascontiguousarray(self.sensed_transfer.transpose(0, 2, 1), dtype=dt)
        return self._casts[dt]

    def _column_sums(self) -> np.ndarray:
        """``sum_n T`` (tiles, M), S: total sense current per word-line volt (binary drivers' power)."""
        if self._col is None:
            self._col = self._characterised()[0].sum(axis=1)
        return self._col

    def _noise_operand(self, peak: float, dtype) -> np.ndarray:
        """The cells' ``(shot + V flicker)`` per channel at drive level ``V = peak`` (tiles, M, C), in ``dtype``."""
        key = (float(peak), np.dtype(dtype))
        if key not in self._noise_at:
            if self.compacted:
                raise InputError(f"read: this stack keeps the cell noise at {self.dac.peak} V only (compact())")
            _, shot, flicker = self._cell_noise
            self._noise_at[key] = np.ascontiguousarray(shot + peak * flicker, dtype=key[1])
        return self._noise_at[key]

    def read_state(self) -> dict[str, np.ndarray] | None:
        """The arrays a compacted stack reads with (``STATE_PARTS``), for a disk cache of
        programmed and characterised tiles (:meth:`TileStack.from_read_state`); None for stacks
        whose reads need more (nonlinear cells, drivers with several levels, which need ``Y``)."""
        if not (self.linear and self.binary_drivers):
            return None
        noisy = self._cell_noise is not None
        dt = tile_read.PRODUCT_DTYPE
        m, c = self.shape[0], self.design.channels
        return {"operand": self._operand(dt), "column_sums": self._column_sums(),
                "noise_operand": self._noise_operand(self.dac.peak, dt) if noisy else np.zeros((0, m, c), dt),
                "thermal": self._cell_noise[0] if noisy else np.zeros((0, c)), "g_source": self._g_source}

    def _restore(self, state: dict) -> None:
        """Take :meth:`read_state`'s arrays as this (compacted) stack's read operands."""
        m, c, nt = self.shape[0], self.design.channels, self.n_tiles
        dt = np.dtype(tile_read.PRODUCT_DTYPE)
        shapes = {"operand": (nt, m, c), "column_sums": (nt, m), "g_source": (nt, c)}
        noisy = state["thermal"].shape[0] > 0
        if noisy:
            shapes.update(noise_operand=(nt, m, c), thermal=(nt, c))
        for name, shape in shapes.items():
            if state[name].shape != shape:
                raise InputError(f"read state {name}: expected shape {shape}, got {state[name].shape}")
        if not self.binary_drivers:
            raise InputError("read state: these drivers have several levels; their reads need Y, rebuild the stack")
        self._casts = {dt: np.ascontiguousarray(state["operand"], dtype=dt)}
        self._col = np.ascontiguousarray(state["column_sums"], dtype=np.float64)
        self._g_source = np.ascontiguousarray(state["g_source"], dtype=np.float64)
        self._sensing = None
        self._noise_at = {(float(self.dac.peak), dt): np.ascontiguousarray(state["noise_operand"], dtype=dt)} \
            if noisy else {}
        self._cell_noise = (np.ascontiguousarray(state["thermal"], dtype=np.float64), None, None) if noisy else None
        self._char, self._sensed = (None, None), None
        self.compacted = True

    def compact(self, *, keep_conductances: bool = True) -> TileStack:
        """Keep only what digital reads (:meth:`mvm`, calibrations) need, in the precision they use; returns self.

        Forms ``S T`` in ``tile_read.PRODUCT_DTYPE`` (float32, within the bound of
        :mod:`~cimphys.circuits.tile_read`), the column sums of ``T`` (binary drivers' source
        power) and, for binary drivers, the cells' shot and 1/f coefficients combined at the drive
        level, also in ``PRODUCT_DTYPE``; then drops ``T``, the float64 ``S T`` and the separate
        coefficients (``Y`` stays where the drivers need it), and the conductances ``g`` too with
        ``keep_conductances=False`` (a whole LLM's tiles).  Reads give the same numbers, bit
        for bit; float64 reads, reads at other drive levels and :attr:`characterisation` are
        refused afterwards (store the characterisation first).
        """
        if not self.linear:
            return self
        if self.compacted:
            if not keep_conductances:
                self.g = None
            return self
        self._operand(tile_read.PRODUCT_DTYPE)
        self._column_sums()
        binary_noise = self.binary_drivers and self._cell_noise is not None
        if binary_noise:
            self._noise_operand(self.dac.peak, tile_read.PRODUCT_DTYPE)
        y = self._characterised()[1]
        self._casts = {np.dtype(tile_read.PRODUCT_DTYPE): self._casts[np.dtype(tile_read.PRODUCT_DTYPE)]}
        self._char, self._sensed = (None, y), None
        if not keep_conductances:
            self.g = None  # only characterisation needs them, and it is refused from now on
        if binary_noise:
            self._cell_noise = (self._cell_noise[0], None, None)
        self.compacted = True
        return self
