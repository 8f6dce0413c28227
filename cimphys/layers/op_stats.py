"""What the layer run counts per matmul and per digital nonlinearity.

:class:`OpStats` sums an op's outputs against fp32 (SNR, cosine) and its hardware costs;
:data:`DIGITAL_OP_COUNTS` is the arithmetic a digital vector unit spends per element of each
nonlinearity (softmax, normalisations, activations), which the engine turns into energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .analog import Costs

__all__ = ["DIGITAL_OP_COUNTS", "NONLINEAR_OPS", "OpStats"]

#: fp32 (adds, multiplies) per element of the digital nonlinearities, counted for a
#: straightforward vector unit (estimates, not a measured design): exp by range reduction and a
#: degree-5 polynomial (6 adds, 7 multiplies), a division as one multiply by a reciprocal taken
#: once per row, erf by Abramowitz & Stegun 7.1.26 (a degree-5 polynomial in 1/(1 + p x) times
#: an exp), tanh(y) = 1 - 2 / (exp(2y) + 1).
#:
#: - softmax: max, subtract, exp, row sum, normalise: 9 adds, 8 multiplies;
#: - layernorm: mean, centre, variance (square, sum), normalise, gain, bias: 4 adds, 3 multiplies;
#: - gelu_erf: x/sqrt(2), erf, x/2 (1 + erf): 14 adds, 18 multiplies;
#: - gelu_tanh: c (x + 0.044715 x^3), tanh, x/2 (1 + tanh): 10 adds, 15 multiplies;
#: - rmsnorm: square and sum, normalise (the row's rsqrt taken once), gain: 1 add, 3 multiplies;
#: - silu_mul (SwiGLU's SiLU(g)·u): exp(-g), 1 + e, reciprocal by two Newton steps, g·r, ·u:
#:   9 adds, 13 multiplies.
#:
#: Energies per op: :attr:`CimConfig.fp_add_energy`, :attr:`CimConfig.fp_mul_energy`.
DIGITAL_OP_COUNTS = {"softmax": (9, 8), "layernorm": (4, 3), "gelu_erf": (14, 18), "gelu_tanh": (10, 15),
                     "rmsnorm": (1, 3), "silu_mul": (9, 13)}
#: Report names of the digital nonlinearities (both GELU forms are "gelu").
NONLINEAR_OPS = ("softmax", "layernorm", "gelu", "rmsnorm", "silu")


@dataclass
class OpStats:
    """Sums that give SNR and cosine similarity of an op's outputs against fp32."""

    ref2: float = 0.0     # Σ y_ref²
    err2: float = 0.0     # Σ (y - y_ref)²
    out2: float = 0.0     # Σ y²
    dot: float = 0.0      # Σ y · y_ref
    calls: int = 0
    costs: Costs = field(default_factory=Costs)
    macs: float = 0.0

    def add(self, y: np.ndarray, ref: np.ndarray) -> None:
        y, ref = y.astype(np.float64), ref.astype(np.float64)
        self.ref2 += float((ref * ref).sum())
        self.err2 += float(((y - ref) ** 2).sum())
        self.out2 += float((y * y).sum())
        self.dot += float((y * ref).sum())
        self.calls += 1

    @property
    def snr_db(self) -> float:
        if self.err2 == 0.0:
            return float("inf")
        return 10.0 * np.log10(self.ref2 / self.err2)

    @property
    def cosine(self) -> float:
        den = np.sqrt(self.ref2 * self.out2)
        return float(self.dot / den) if den > 0 else 1.0
