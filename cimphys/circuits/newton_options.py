"""What a Newton solve of a crossbar is asked and what it answers.

:class:`NewtonOptions` holds the tolerances and the convergence aids to try, with the defaults
below; :class:`NonlinearSolution` the operating point, per input vector the iterations, the
final KCL residual and the aid that converged.  :mod:`cimphys.circuits.newton` does the solving.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import as_scalar
from ..errors import InputError

__all__ = ["ATOL_KCL", "MAX_ITER", "RTOL_KCL", "RTOL_V", "VNTOL", "V_STEP_MAX", "NewtonOptions", "NonlinearSolution"]

# Why these values: Newton converges quadratically, so once the residual is small it drops to
# the float64 floor in one more step.  1e-11 of the largest cell current sits a few decades
# above that floor (cell currents are sums of terms ~1e-16 relative) and far below the 1e-7
# agreement asked against ngspice.
RTOL_KCL = 1e-11
ATOL_KCL = 1e-18  # A: ngspice's abstol in the validation runs; only matters when I ~ 0
RTOL_V = 1e-10  # relative node-voltage update
VNTOL = 1e-12  # V: absolute node-voltage update (ngspice vntol in the validation runs)
MAX_ITER = 60  # per Newton run; a converging run on these networks takes 3-10
V_STEP_MAX = 0.5  # V: SPICE-style limit on the largest node-voltage change per iteration


_STRATEGIES = ("newton", "gmin", "source")


@dataclass(frozen=True)
class NewtonOptions:
    """Tolerances and strategies of :func:`solve_nonlinear` (defaults: the module constants).

    ``strategies`` lists what to try, in order, each from scratch: ``"newton"`` (plain Newton
    with voltage limiting), ``"gmin"`` (gmin stepping), ``"source"`` (source stepping).
    """

    rtol_kcl: float = RTOL_KCL
    atol_kcl: float = ATOL_KCL
    rtol_v: float = RTOL_V
    vntol: float = VNTOL
    max_iter: int = MAX_ITER
    v_step_max: float = V_STEP_MAX
    strategies: tuple[str, ...] = ("newton", "gmin", "source")

    def __post_init__(self):
        for name in ("rtol_kcl", "atol_kcl", "rtol_v", "vntol", "v_step_max"):
            as_scalar(name, getattr(self, name), low=0.0, low_open=name == "v_step_max")
        as_scalar("max_iter", self.max_iter, low=1, high=10_000)
        unknown = set(self.strategies) - set(_STRATEGIES)
        if unknown or not self.strategies:
            raise InputError(f"strategies: expected some of {_STRATEGIES} in the order to try, got {self.strategies}")


@dataclass(frozen=True)
class NonlinearSolution:
    """Operating point of a crossbar with nonlinear cells.

    Attributes
    ----------
    v_wl, v_bl : ndarray, V
        Node voltages, ``(M, N)`` or ``(batch, M, N)``.
    i_out : ndarray, A
        Current into each sense node, ``(N,)`` or ``(batch, N)``.
    i_cell : ndarray, A
        Current through each cell (WL to BL), like ``v_wl``.
    iterations : ndarray of int
        Newton iterations spent (all aids included), one per input vector.
    residual : ndarray, A
        Final largest KCL imbalance, one per input vector.
    method : tuple of str
        Which strategy converged for each input vector ("newton", "gmin" or "source").
    """

    v_wl: np.ndarray
    v_bl: np.ndarray
    i_out: np.ndarray
    i_cell: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    method: tuple[str, ...] = field(default=())
    converged: bool = True

    def to_xarray(self):
        """Dataset with dims ``row``, ``col`` (and ``batch``), units on every variable."""
        import xarray as xr

        from ..results import variable

        batch = self.v_wl.ndim == 3
        nodes = ("batch", "row", "col") if batch else ("row", "col")
        per = ("batch",) if batch else ()
        data = {
            "v_wl": variable(nodes, self.v_wl, "V", "word-line node voltage"),
            "v_bl": variable(nodes, self.v_bl, "V", "bit-line node voltage"),
            "i_cell": variable(nodes, self.i_cell, "A", "cell current, word line to bit line"),
            "i_out": variable((*per, "col"), self.i_out, "A", "current into the sense node"),
            "iterations": variable(per, self.iterations if batch else self.iterations[0], "1", "Newton iterations"),
            "residual": variable(per, self.residual if batch else self.residual[0], "A", "final KCL residual"),
        }
        return xr.Dataset(data, attrs={"solver": "newton-raphson", "method": ",".join(self.method)})
