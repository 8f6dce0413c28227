"""The one interface every matrix product of a transformer goes through.

A model calls ``engine.matmul(op, layer, x, w, b)`` for each product and never ``@`` itself, so
the same forward pass runs digitally in float32 or on simulated CIM tiles (see
:mod:`cimphys.layers.analog`).  Static products (weights fixed at programming time) have
``w`` of shape ``(in, out)`` and ``x`` of shape ``(..., in)``; dynamic products (attention
scores ``Q Kᵀ`` and ``softmax · V``) have ``x`` ``(batch, head, n, k)`` and ``w``
``(batch, head, k, m)``.  ``b`` is a bias ``(out,)`` or None.

Op names
--------
``query``, ``key``, ``value``, ``attn_out``, ``ffn_up``, ``ffn_down`` (BERT), ``qkv`` (GPT-2's
fused projection), ``lm_head`` (GPT-2 tied output), ``qk`` and ``av`` (dynamic).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["DYNAMIC_OPS", "STATIC_OPS", "DigitalEngine", "MatmulEngine"]

STATIC_OPS = ("query", "key", "value", "attn_out", "ffn_up", "ffn_down", "qkv", "lm_head")
DYNAMIC_OPS = ("qk", "av")


@runtime_checkable
class MatmulEngine(Protocol):
    """Anything with ``matmul(op, layer, x, w, b) -> x @ w (+ b)``."""

    def matmul(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        ...


class DigitalEngine:
    """Reference float32 arithmetic, the way a GPU runs the model (accumulation in float32)."""

    dtype = np.float32

    def matmul(self, op: str, layer: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        x, w = np.asarray(x, dtype=self.dtype), np.asarray(w, dtype=self.dtype)
        if w.ndim == 2:  # one 2-D GEMM over all tokens
            y = (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[1],))
        else:
            y = np.matmul(x, w)
        if b is not None:
            y += np.asarray(b, dtype=self.dtype)
        return y
