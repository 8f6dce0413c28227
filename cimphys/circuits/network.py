"""The crossbar's wires as a network, the linear cell stamp, and the currents it implies.

Contract (every solver path and :func:`cimphys.circuits.linear.solve_linear` use it)
-----------------------------------------------------------------------------------
``network = Network.build((M, N), r_wl=..., r_bl=..., r_driver=..., r_sense=..., **options)``
    A frozen description of the wires.  ``r_wl (M, N)``: segment ``r_wl[i, j]`` lies on the
    *driver side* of WL node ``(i, j)`` (so ``r_wl[i, 0]`` joins the driver to cell ``(i, 0)``).
    ``r_bl (M, N)``: segment ``r_bl[i, j]`` lies on the *sense side* of BL node ``(i, j)`` (with
    the default sensing at row M-1, ``r_bl[M-1, j]`` joins the last cell to ``r_sense``).
    ``r_driver (M,)``, ``r_sense (N,)``.  Scalars broadcast.  Zero resistances are exact
    (nodes merge); nothing is ever divided by zero.

The linearised cell stamp is ``I_cell = a * v_wl - b * v_bl + c`` (A, from the WL node to the BL
node of each cell), ``a, b`` of shape ``(M, N)`` in S, ``c`` of shape ``(M, N)`` or
``(batch, M, N)`` in A, with word-line sources ``v_in`` of shape ``(M,)`` or ``(batch, M)`` in V.
For a two-terminal cell linearised at ``V0``: ``a = b = dI/dV`` and ``c = I(V0) - a * V0``;
``a != b`` (a non-symmetric system) is allowed for three-terminal cells.
:func:`check_stamp` checks a stamp and gives it batch axes.

Options of :meth:`Network.build` (defaults give the reference crossbar of DESIGN.md):
``wl_drive="near" | "both"`` (with ``"both"`` the far node ``(i, N-1)`` is also tied to
``v_in[i]`` through its own ``r_driver[i]``), ``sense_at="last" | "first"`` (row M-1 or row 0),
``v_bl_end (N,)`` the voltage the sense node of each BL is held at (V/2 and V/3 write schemes),
``wl_floating (M,)`` / ``bl_floating (N,)`` boolean masks of lines left without a source.

References
----------
.. [1] C. Ho, J. Vlach, *Computer Methods for Circuit Analysis and Design*, 2nd ed., ch. 2
   (nodal formulation), Springer (1994).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import as_array
from ..errors import InputError

__all__ = ["Chains", "Network", "cell_currents", "check_stamp", "output_currents", "writable"]


@dataclass(frozen=True, eq=False)
class Chains:
    """One family of lines (all WLs or all BLs) as resistor chains.

    Chain ``l`` has nodes ``0 .. n-1``; ``r_seg[l, k]`` joins node k to node k+1; ``r_lo[l]`` ties
    node 0 and ``r_hi[l]`` node n-1 to an ideal source.  A resistance of 0 merges nodes (or fixes
    a node to its source); ``inf`` means open (no source at that end).  Ohm.
    """

    r_seg: np.ndarray  # (L, n-1)
    r_lo: np.ndarray  # (L,)
    r_hi: np.ndarray  # (L,)

    @property
    def groups(self) -> np.ndarray:
        """Local index of the merged node each node belongs to, ``(L, n)`` int64."""
        step = np.concatenate([np.zeros((self.r_seg.shape[0], 1), bool), self.r_seg > 0], axis=1)
        return np.cumsum(step, axis=1, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Network:
    """The wires of an M x N crossbar (see the module docstring for the exact contract)."""

    r_wl: np.ndarray
    r_bl: np.ndarray
    r_driver: np.ndarray
    r_sense: np.ndarray
    v_bl_end: np.ndarray
    wl_floating: np.ndarray
    bl_floating: np.ndarray
    wl_drive: str = "near"
    sense_at: str = "last"

    @classmethod
    def build(
        cls,
        shape,
        r_wl=1.0,
        r_bl=1.0,
        r_driver=0.0,
        r_sense=0.0,
        *,
        wl_drive: str = "near",
        sense_at: str = "last",
        v_bl_end=0.0,
        wl_floating=False,
        bl_floating=False,
    ) -> Network:
        """Check and broadcast the wire description of an ``shape = (M, N)`` array."""
        m, n = _check_shape(shape)
        if wl_drive not in ("near", "both"):
            raise InputError(f"wl_drive: expected 'near' or 'both', got {wl_drive!r}")
        if sense_at not in ("last", "first"):
            raise InputError(f"sense_at: expected 'last' or 'first', got {sense_at!r}")
        net = cls(
            r_wl=_resistance("r_wl", r_wl, (m, n)),
            r_bl=_resistance("r_bl", r_bl, (m, n)),
            r_driver=_resistance("r_driver", r_driver, (m,)),
            r_sense=_resistance("r_sense", r_sense, (n,)),
            v_bl_end=_broadcast("v_bl_end", as_array("v_bl_end", v_bl_end, unit="V", ndim=(0, 1)), (n,)),
            wl_floating=_mask("wl_floating", wl_floating, (m,)),
            bl_floating=_mask("bl_floating", bl_floating, (n,)),
            wl_drive=wl_drive,
            sense_at=sense_at,
        )
        net._check_sources()
        return net

    @property
    def shape(self) -> tuple[int, int]:
        return self.r_wl.shape

    def wl_chains(self) -> Chains:
        """The M word lines as chains along the columns."""
        open_ = np.where(self.wl_floating, np.inf, 0.0)
        r_lo = self.r_driver + self.r_wl[:, 0] + open_
        r_hi = (self.r_driver if self.wl_drive == "both" else np.full_like(self.r_driver, np.inf)) + open_
        return Chains(np.ascontiguousarray(self.r_wl[:, 1:]), r_lo, r_hi)

    def bl_chains(self) -> Chains:
        """The N bit lines as chains along the rows (arrays transposed to ``(N, ...)``)."""
        open_ = np.where(self.bl_floating, np.inf, 0.0)
        inf = np.full_like(self.r_sense, np.inf)
        if self.sense_at == "last":
            seg, r_lo, r_hi = self.r_bl[:-1].T, inf, self.r_bl[-1] + self.r_sense + open_
        else:
            seg, r_lo, r_hi = self.r_bl[1:].T, self.r_bl[0] + self.r_sense + open_, inf
        return Chains(np.ascontiguousarray(seg), r_lo, r_hi)

    def bl_couplings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The BL wires as conductances, S: ``g (M, N)`` between rows t-1 and t of each BL (row 0:
        none); ``g_lo, g_hi (N,)`` the end conductances at rows 0 and M-1 (1/inf = 0: an open
        end); ``diag (M, N)``, what the BL wires add to the diagonal at each node."""
        m, n = self.shape
        bl = self.bl_chains()
        g = np.zeros((m, n))
        g[1:] = 1.0 / bl.r_seg.T
        g_lo, g_hi = 1.0 / bl.r_lo, 1.0 / bl.r_hi
        diag = np.zeros((m, n))
        diag[1:] += g[1:]
        diag[:-1] += g[1:]
        diag[0] += g_lo
        diag[-1] += g_hi
        return g, g_lo, g_hi, diag

    def sense_resistance(self) -> np.ndarray:
        """Resistance from the sensed end node of each BL to its sense node, ``(N,)`` ohm."""
        row = -1 if self.sense_at == "last" else 0
        return self.r_bl[row] + self.r_sense

    def _check_sources(self) -> None:
        if self.wl_drive != "both":
            return
        chains = self.wl_chains()
        shorted = (chains.r_lo == 0) & (chains.r_hi == 0) & (chains.r_seg.sum(axis=1) == 0)
        if shorted.any():
            i = int(np.argmax(shorted))
            raise InputError(
                f"r_driver, r_wl: with wl_drive='both' word line {i} has zero resistance between its two "
                "drivers, so the split of its current between them is undefined"
            )


def _check_shape(shape) -> tuple[int, int]:
    try:
        m, n = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise InputError(f"shape: expected (M, N), got {shape!r}") from exc
    if m < 1 or n < 1:
        raise InputError(f"shape: expected M, N >= 1, got {(m, n)}")
    return m, n


def _broadcast(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if arr.ndim and arr.shape != shape:
        raise InputError(f"{name}: expected a scalar or shape {shape}, got {arr.shape}")
    out = np.ascontiguousarray(np.broadcast_to(arr, shape), dtype=np.float64)
    out.setflags(write=False)
    return out


def _resistance(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = as_array(name, value, unit="ohm", low=0.0, ndim=(0, len(shape)))
    return _broadcast(name, arr, shape)


def _mask(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != bool:
        raise InputError(f"{name}: expected booleans, got {arr.dtype} {value!r:.60}")
    if arr.ndim and arr.shape != shape:
        raise InputError(f"{name}: expected a scalar or shape {shape}, got {arr.shape}")
    out = np.ascontiguousarray(np.broadcast_to(arr, shape))
    out.setflags(write=False)
    return out



def check_stamp(network: Network, a, b, c, v_in):
    """Check the stamp and the inputs; return ``(a, b, c3, v2, batched)`` with batch axes.

    ``v2`` is ``(B, M)``; ``c3`` is ``(1, M, N)`` when ``c`` has no batch axis or a batch of one
    (every path broadcasts it: ``B`` copies would cost a pass over ``B M N`` values), else
    ``(B, M, N)``.
    """
    m, n = network.shape
    a = as_array("a", a, unit="S", shape=(m, n))
    b = as_array("b", b, unit="S", shape=(m, n))
    c = as_array("c", c, unit="A", ndim=(2, 3))
    v_in = as_array("v_in", v_in, unit="V", ndim=(1, 2))
    if v_in.shape[-1] != m:
        raise InputError(f"v_in: expected last axis of length M={m}, got shape {v_in.shape}")
    if c.shape[-2:] != (m, n):
        raise InputError(f"c: expected shape ({m}, {n}) or (batch, {m}, {n}), got {c.shape}")
    batched = v_in.ndim == 2 or c.ndim == 3
    nb = max(v_in.shape[0] if v_in.ndim == 2 else 1, c.shape[0] if c.ndim == 3 else 1)
    for name, arr, core in (("v_in", v_in, 1), ("c", c, 2)):
        if arr.ndim == core + 1 and arr.shape[0] not in (1, nb):
            raise InputError(f"{name}: batch size {arr.shape[0]} does not match the other input's {nb}")
    v2 = writable(np.broadcast_to(v_in.reshape(-1, m), (nb, m)))
    c3 = writable(c.reshape(-1, m, n))
    return writable(a), writable(b), c3, v2, batched


def writable(arr: np.ndarray) -> np.ndarray:
    """A writable C-contiguous float64 array (one compiled signature per kernel, not two)."""
    ok = arr.flags.writeable and arr.flags.c_contiguous and arr.dtype == np.float64
    return arr if ok else np.array(arr, dtype=np.float64, order="C")


def cell_currents(a, b, c3, v_wl, v_bl) -> np.ndarray:
    """Current of every cell from its WL node to its BL node, ``(batch, M, N)`` A."""
    return a * v_wl - b * v_bl + c3


def output_currents(network: Network, i_cell: np.ndarray, v_bl: np.ndarray) -> np.ndarray:
    """Current into each BL's sense node, ``(batch, N)`` A, positive out of the array.

    Ohm's law on the sense-end resistance where it is non-zero; where it is zero, the BL's
    only exit is its sense node, so KCL gives the sum of the column's cell currents.
    """
    r_end = network.sense_resistance()
    row = -1 if network.sense_at == "last" else 0
    ohm = (v_bl[:, row, :] - network.v_bl_end) / np.where(r_end > 0, r_end, 1.0)
    i_out = np.where(r_end > 0, ohm, i_cell.sum(axis=1))
    return np.where(network.bl_floating, 0.0, i_out)
