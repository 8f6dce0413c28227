"""Token generation and perplexity for a decoder (:class:`~cimphys.layers.llama.LlamaDecoder`).

:class:`Sampler` picks the next token from a row of logits: greedy (``temperature = 0``), or
a draw from ``softmax(logits / T)`` restricted to the ``top_k`` most likely tokens and then to
the smallest set whose probability reaches ``top_p`` (nucleus sampling), renormalised.  Every
draw takes a ``numpy.random.Generator``; the same seed gives the same text.

:func:`generate` runs the prompt once, then one token per step through the KV cache;
:func:`perplexity` is ``exp`` of the mean negative log-likelihood of each token given the ones
before it (within windows of ``window`` tokens).

References
----------
A. Holtzman et al., "The curious case of neural text degeneration", ICLR 2020,
arXiv:1904.09751 (top-p).  A. Fan et al., "Hierarchical neural story generation", ACL 2018
(top-k).  F. Jelinek et al., "Perplexity — a measure of the difficulty of speech recognition
tasks", JASA 62, S63 (1977).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

__all__ = ["Generation", "Sampler", "generate", "log_softmax", "perplexity"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class Sampler:
    """How the next token is chosen.

    Parameters
    ----------
    temperature : float
        0 for greedy (argmax); otherwise logits are divided by it before the softmax.
    top_k : int
        Keep the ``top_k`` most likely tokens (0: all).
    top_p : float
        Keep the smallest most-likely set whose probability is at least ``top_p`` (1: all).
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise InputError(f"temperature: expected a finite value >= 0, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, (int, np.integer)) or self.top_k < 0:
            raise InputError(f"top_k: expected an integer >= 0, got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"top_p: expected a value in (0, 1], got {self.top_p!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The distribution (vocab,) float64 a draw is taken from (zero outside top-k / top-p)."""
        z = np.asarray(logits, np.float64)
        if self.greedy:
            p = np.zeros_like(z)
            p[int(np.argmax(z))] = 1.0
            return p
        p = np.exp(log_softmax(z / self.temperature))
        order = np.argsort(-p, kind="stable")
        keep = len(p) if self.top_k == 0 else min(self.top_k, len(p))
        csum = np.cumsum(p[order[:keep]])
        keep = min(keep, int(np.searchsorted(csum, self.top_p * csum[-1] * (1 - 1e-12))) + 1)
        out = np.zeros_like(p)
        out[order[:keep]] = p[order[:keep]]
        return out / out.sum()

    def __call__(self, logits: np.ndarray, rng: np.random.Generator) -> int:
        """The next token id for one row of logits (vocab,)."""
        if self.greedy:
            return int(np.argmax(logits))
        p = self.probabilities(logits)
        return int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"), len(p) - 1))


@dataclass
class Generation:
    """Tokens generated after a prompt, with the logits that chose each one."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)


def generate(model, prompt: Sequence[int], n_new: int, engine=None, *, sampler: Sampler | None = None,
             seed: int = 0, stop: Sequence[int] = (), on_token: Callable[[int], None] | None = None,
             forced: Sequence[int] | None = None) -> Generation:
    """Generate up to ``n_new`` tokens after ``prompt`` with a KV cache.

    ``stop``: token ids that end generation (kept in the output).  ``forced``: tokens to feed
    instead of the sampled ones (teacher forcing: the logits along another run's tokens, to
    compare two engines on the same context).  ``on_token`` is called with each new token.
    """
    if isinstance(n_new, bool) or not isinstance(n_new, (int, np.integer)) or n_new < 1:
        raise InputError(f"n_new: expected an integer >= 1, got {n_new!r}")
    if len(prompt) == 0:
        raise InputError("prompt: expected at least one token")
    sampler = sampler or Sampler()
    rng = np.random.default_rng(seed)
    cache = model.new_cache()
    out = Generation(list(map(int, prompt)))
    _, logits = model.forward(np.array([out.prompt]), engine=engine, logits=True, cache=cache)
    for step in range(n_new):
        row = logits[0, -1]
        token = sampler(row, rng) if forced is None else int(forced[step])
        out.tokens.append(token)
        out.logits.append(row)
        if on_token is not None:
            on_token(token)
        if token in stop or step == n_new - 1:
            break
        _, logits = model.forward(np.array([[token]]), engine=engine, logits=True, cache=cache)
    return out


def perplexity(model, ids: Sequence[int], engine=None, *, window: int = 512) -> tuple[float, np.ndarray]:
    """``(exp(mean NLL), NLL per predicted token)`` of ``ids`` in windows of ``window`` tokens.

    Each window starts with an empty context; its first token is not predicted.  NLL in nats.
    """
    ids = np.asarray(ids, np.int64)
    if ids.ndim != 1 or ids.size < 2:
        raise InputError(f"ids: expected a 1-D sequence of at least 2 tokens, got shape {ids.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise InputError(f"window: expected an integer >= 2, got {window!r}")
    nll = []
    for start in range(0, ids.size - 1, window):
        chunk = ids[start:start + window]
        if chunk.size < 2:
            break
        _, logits = model.forward(chunk[None], engine=engine, logits=True)
        lp = log_softmax(logits[0, :-1])
        nll.append(-lp[np.arange(chunk.size - 1), chunk[1:]])
    nll = np.concatenate(nll)
    return float(np.exp(nll.mean())), nll
