"""Which matrix products run on CIM tiles and which stay digital.

Static projections (``query``, ``key``, ``value``, ``attn_out``, ``ffn_up``, ``ffn_down``, and
GPT-2's ``qkv``) are analog by default: their weights are programmed once.  The dynamic
products ``qk`` (Q Kᵀ) and ``av`` (softmax · V) are digital by default; routed to CIM, their
operand (Kᵀ or V) is written into arrays for every sequence, and the write energy, write time
and endurance it costs are counted per token.  ``lm_head`` (the tied vocabulary projection) is
digital by default.  Softmax, LayerNorm and GELU are always digital.

Cost of simulating dynamic ops on CIM: each (sequence, head) operand is programmed into full
tiles and, with wire resistance, each tile is characterised anew (one crossbar transfer-matrix
solve per tile per sequence), so on large tiles with wires this is slow (minutes for a few
sentences on 256x256 tiles); the ADC range of a dynamic tile is calibrated on the call's own
reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .matmul import DYNAMIC_OPS, STATIC_OPS

__all__ = ["ALL_OPS", "Routing"]

ALL_OPS = STATIC_OPS + DYNAMIC_OPS
_DEFAULT_ANALOG = frozenset({"query", "key", "value", "attn_out", "ffn_up", "ffn_down", "qkv"})


@dataclass(frozen=True)
class Routing:
    """The set of ops that run on CIM tiles.

    Examples
    --------
    >>> Routing().is_analog("qk")
    False
    >>> Routing.parse("qk=analog,ffn_down=digital").is_analog("qk")
    True
    """

    analog: frozenset = _DEFAULT_ANALOG

    def __post_init__(self):
        unknown = set(self.analog) - set(ALL_OPS)
        if unknown:
            raise InputError(f"routing: unknown ops {sorted(unknown)}; expected names from {ALL_OPS}")
        object.__setattr__(self, "analog", frozenset(self.analog))

    def is_analog(self, op: str) -> bool:
        return op in self.analog

    def with_(self, **ops: str) -> Routing:
        """A copy with ``op="analog"|"digital"`` changes."""
        analog = set(self.analog)
        for op, where in ops.items():
            if op not in ALL_OPS:
                raise InputError(f"routing: unknown op {op!r}; expected one of {ALL_OPS}")
            if where not in ("analog", "digital"):
                raise InputError(f"routing: {op} must be 'analog' or 'digital', got {where!r}")
            (analog.add if where == "analog" else analog.discard)(op)
        return Routing(frozenset(analog))

    @classmethod
    def parse(cls, text: str) -> Routing:
        """``"op=analog,op=digital"``; also ``"all=analog"`` / ``"all=digital"`` first."""
        routing = cls()
        for item in filter(None, (s.strip() for s in text.split(","))):
            if "=" not in item:
                raise InputError(f"routing: expected op=analog|digital, got {item!r}")
            op, where = (s.strip() for s in item.split("=", 1))
            if op == "all":
                if where not in ("analog", "digital"):
                    raise InputError(f"routing: all must be 'analog' or 'digital', got {where!r}")
                routing = cls(frozenset(ALL_OPS) if where == "analog" else frozenset())
                continue
            routing = routing.with_(**{op: where})
        return routing
