"""Nodal analysis of a crossbar with wire resistance: the public names in one place.

The linear nodal solve is split by job; this module gathers its public names so that
``from cimphys.circuits.nodal import Network, solve_linear`` keeps working:

* :mod:`cimphys.circuits.network`: the wires (:class:`Network`, :class:`Chains`), the stamp
  check and the currents a solution implies;
* :mod:`cimphys.circuits.lines`: the exact line (chain) solves every path shares;
* :mod:`cimphys.circuits.direct`, :mod:`cimphys.circuits.schur`,
  :mod:`cimphys.circuits.iterative`, :mod:`cimphys.circuits.block`: the four solver paths;
* :mod:`cimphys.circuits.linear`: the dispatcher (:func:`solve_linear`, :class:`SolveReport`);
* :mod:`cimphys.circuits.transfer`: the transfer matrix;
* :mod:`cimphys.circuits.power`: source currents and dissipation.

Nothing in the package imports this module; it imports the others.
"""

from __future__ import annotations

from .block import BlockFactor, block_eligible, block_fits
from .direct import MAX_DIRECT_NODES, assemble, network_residual
from .lines import LineFactor
from .linear import METHODS, RTOL_SOLVE, SolveReport, solve_linear, solve_with_report
from .network import Chains, Network, cell_currents, check_stamp, output_currents
from .power import dissipation, wl_end_currents
from .transfer import transfer_matrix

__all__ = [
    "BlockFactor",
    "Chains",
    "LineFactor",
    "MAX_DIRECT_NODES",
    "METHODS",
    "Network",
    "RTOL_SOLVE",
    "SolveReport",
    "assemble",
    "block_eligible",
    "block_fits",
    "cell_currents",
    "check_stamp",
    "dissipation",
    "network_residual",
    "output_currents",
    "solve_linear",
    "solve_with_report",
    "transfer_matrix",
    "wl_end_currents",
]
