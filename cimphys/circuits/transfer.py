"""The transfer matrix ``T`` of a linear crossbar: ``i_out = T @ v_in``.

One route for every caller (:meth:`cimphys.circuits.crossbar.Crossbar.transfer_matrix`, the tile
characterisation): where the network fits the block path, the one-pass Cholesky kernel
(:func:`cimphys.circuits.block.streamed_transfer`) or the forward sweep of a
:class:`~cimphys.circuits.block.BlockFactor`; else ``M`` unit solves through the dispatcher
(:func:`cimphys.circuits.linear.solve_linear`).  ``BlockFactor``, ``block_fits``,
``block_eligible`` and ``MAX_BLOCK_BYTES`` are importable from here too (their home is
:mod:`cimphys.circuits.block`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from .block import MAX_BLOCK_BYTES, BlockFactor, block_eligible, block_fits, streamed_transfer
from .linear import METHODS, solve_linear
from .network import Network, check_stamp

__all__ = ["MAX_BLOCK_BYTES", "BlockFactor", "block_eligible", "block_fits", "transfer_matrix"]


def transfer_matrix(network: Network, a, b, *, method: str = "auto", factor: BlockFactor | None = None):
    """``T (N, M)`` in S with ``i_out = T @ v_in`` for the stamp ``(a, b)`` and ``c = 0``.

    Only the WL sources count: BL-end biases (``v_bl_end``) add an offset, not part of ``T``.
    Uses ``factor`` if given; else, where the network fits the block path, the one-pass
    Cholesky kernel (:func:`~cimphys.circuits.block.streamed_transfer`) when ``a == b >= 0``
    with sensing at row M-1 (no factor kept: two blocks in memory), and a :class:`BlockFactor`
    otherwise or where a block is not positive definite; else ``M`` unit solves through
    :func:`~cimphys.circuits.linear.solve_linear`.
    """
    m, n = network.shape
    if method not in METHODS:
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    if factor is None and method in ("auto", "block") and block_fits(network):
        a, b = check_stamp(network, a, b, np.zeros((m, n)), np.zeros(m))[:2]
        t = streamed_transfer(network, a, b)
        if t is not None:
            return t
        factor = BlockFactor(network, a, b)
    if factor is not None:
        t = factor.transfer()
        if np.isfinite(t).all():
            return t
    unbiased = dataclasses.replace(network, v_bl_end=np.zeros(n))
    sub = "auto" if method == "block" else method
    # Unit inputs in chunks, so that the ~16 work vectors of a batched solve stay in budget.
    chunk = max(1, int(MAX_BLOCK_BYTES // (16 * 8 * m * n)))
    eye = np.eye(m)
    parts = [
        solve_linear(unbiased, a, b, np.zeros((m, n)), eye[k : k + chunk], method=sub)[2]
        for k in range(0, m, chunk)
    ]
    return np.ascontiguousarray(np.vstack(parts).T)
