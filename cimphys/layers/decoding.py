"""A decoder LLM on CIM tiles against float32: generated text, perplexity, energy per token.

:func:`compare_generation` generates the same number of tokens after a prompt in float32 and
on an :class:`~cimphys.layers.engine.AnalogEngine`, and records per generated token the two
tokens, the energy by component (array, DAC, sense, ADC, digital, KV/operand writes), the
latency and the cell writes, as the engine counted them during that decoding step.
:func:`perplexity_report` scores a text in float32 and on tiles: perplexity, per-block
hidden-state error, energy per token.

The engine is calibrated (ADC ranges) on :data:`CALIBRATION_TOKENS` tokens of the bundled
Constitution text (:mod:`cimphys.layers.corpus`), never on the prompt or the scored text
itself, unless the caller calibrates it first.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..results import variable
from .corpus import CONSTITUTION
from .matmul import DigitalEngine
from .report import BUCKETS
from .sampling import Sampler, generate, log_softmax, perplexity

__all__ = ["CALIBRATION_TOKENS", "calibrate", "compare_generation", "perplexity_report", "totals"]

CALIBRATION_TOKENS = 64


def totals(engine) -> np.ndarray:
    """Engine totals so far: energy per bucket (J, :data:`BUCKETS` order), latency (s), cell writes."""
    out = np.zeros(len(BUCKETS) + 2)
    for st in engine.stats.values():
        c = st.costs
        out[:len(BUCKETS)] += [getattr(c, b) for b in BUCKETS]
        out[-2] += c.latency
        out[-1] += c.cell_writes
    return out


def calibrate(model, engine, text: str | None = None, n_tokens: int = CALIBRATION_TOKENS) -> None:
    """Set the engine's ADC ranges on the first ``n_tokens`` tokens of ``text`` (default: the
    bundled calibration sentences, :data:`cimphys.layers.sentences.CALIBRATION`, which are
    neither the scored text nor a prompt: ranges set on evaluated inputs would be an oracle)."""
    from .sentences import CALIBRATION

    text = " ".join(CALIBRATION) if text is None else text
    ids = np.array([model.tokenizer.encode(text)[:n_tokens]])
    engine.calibrate(model, ids)
    engine.reset_stats()


def compare_generation(model, prompt: list[int], n_new: int, engine, *, sampler: Sampler | None = None,
                       seed: int = 0, on_token=None) -> xr.Dataset:
    """Generate ``n_new`` tokens in float32 and on ``engine`` (calibrated); one Dataset.

    Variables over ``step``: ``token_fp32``, ``token_cim``; ``logit_cosine`` of the CIM logits
    to float32 logits of the same context (the CIM run's own tokens fed to both), ``energy``
    (step, bucket) J, ``latency`` s and ``cell_writes`` per generated token; the prompt's
    energy and latency; ``agreement`` (fraction of steps with the same token) and
    ``first_divergence`` in attrs.
    """
    sampler = sampler or Sampler()
    ref = generate(model, prompt, n_new, DigitalEngine(), sampler=sampler, seed=seed)
    steps = []
    engine.reset_stats()
    start = totals(engine)

    def note(token):
        steps.append(totals(engine))
        if on_token is not None:
            on_token(token)

    cim = generate(model, prompt, n_new, engine, sampler=sampler, seed=seed, on_token=note)
    # float32 logits along the CIM run's tokens: what the same context gives without the tiles
    forced = generate(model, prompt, len(cim.tokens), DigitalEngine(), forced=cim.tokens)
    a, b = np.array(cim.logits, np.float64), np.array(forced.logits, np.float64)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    marks = np.array([start] + steps)
    per_step = np.diff(marks, axis=0)  # row 0: the prompt pass; row k: the pass that chose token k
    n = min(len(ref.tokens), len(cim.tokens))
    same = [x == y for x, y in zip(ref.tokens[:n], cim.tokens[:n])]
    decode = per_step[1:] if len(per_step) > 1 else per_step[:0]
    ds = xr.Dataset({
        "token_fp32": variable(("step",), np.array(ref.tokens[:n]), "1", "token generated in float32"),
        "token_cim": variable(("step",), np.array(cim.tokens[:n]), "1", "token generated on CIM tiles"),
        "logit_cosine": variable(("step",), cosine[:n], "1", "cosine of CIM to float32 logits, same context"),
        "energy": variable(("token", "bucket"), decode[:, :len(BUCKETS)], "J", "energy per generated token"),
        "latency": variable(("token",), decode[:, -2], "s", "latency per generated token"),
        "cell_writes": variable(("token",), decode[:, -1], "1", "cell writes per generated token"),
        "prompt_energy": variable(("bucket",), per_step[0, :len(BUCKETS)], "J", "energy of the prompt pass"),
        "prompt_latency": variable((), per_step[0, -2], "s", "latency of the prompt pass"),
    }, coords={"step": np.arange(n), "token": np.arange(1, 1 + len(decode)), "bucket": list(BUCKETS)})
    ds.attrs.update(agreement=float(np.mean(same)) if same else 1.0,
                    first_divergence=int(same.index(False)) if False in same else n,
                    prompt_tokens=len(prompt), text_fp32=model.tokenizer.decode(ref.tokens),
                    max_writes_per_cell=int(getattr(engine, "max_writes_per_cell", lambda: 0)()),
                    text_cim=model.tokenizer.decode(cim.tokens))
    if hasattr(engine, "kv_writes"):  # the KV cache in CIM arrays: writes per cell against endurance
        kv = engine.kv_writes()
        ds.attrs.update(kv_endurance=kv.attrs["endurance"], kv_endurance_source=kv.attrs["endurance_source"],
                        kv_cells_past_endurance=kv.attrs["cells_past_endurance"])
    return ds


def _hidden_errors(ref_states, states) -> np.ndarray:
    return np.array([np.linalg.norm(s - r) / max(np.linalg.norm(r), 1e-30) for s, r in zip(states, ref_states)])


def perplexity_report(model, ids, engine, *, window: int = 512) -> xr.Dataset:
    """Perplexity of ``ids`` in float32 and on ``engine``, hidden-state error per block, energy per token."""
    ids = np.asarray(ids, np.int64)
    ppl_ref, nll_ref = perplexity(model, ids, DigitalEngine(), window=window)
    engine.reset_stats()
    ppl, nll = perplexity(model, ids, engine, window=window)
    spent = totals(engine)
    first = ids[None, :min(window, ids.size)]
    err = _hidden_errors(model.forward(first), model.forward(first, engine=engine))
    _, lg_ref = model.forward(first, logits=True)
    _, lg = model.forward(first, engine=engine, logits=True)
    top1 = float(np.mean(lg.argmax(-1) == lg_ref.argmax(-1)))
    kl = float(np.mean((np.exp(log_softmax(lg_ref)) * (log_softmax(lg_ref) - log_softmax(lg))).sum(-1)))
    return xr.Dataset({
        "perplexity_fp32": variable((), ppl_ref, "1", "perplexity in float32"),
        "perplexity_cim": variable((), ppl, "1", "perplexity on CIM tiles"),
        "nll_fp32": variable(("position",), nll_ref, "nat", "negative log-likelihood per token, float32"),
        "nll_cim": variable(("position",), nll, "nat", "negative log-likelihood per token, CIM"),
        "hidden_error": variable(("state",), err, "1", "relative hidden-state error vs float32"),
        "top1_agreement": variable((), top1, "1", "next-token argmax agreement, first window"),
        "kl_divergence": variable((), kl, "nat", "mean KL(fp32 || CIM) of next-token distributions, first window"),
        "energy_per_token": variable(("bucket",), spent[:len(BUCKETS)] / ids.size, "J", "energy per token"),
        "latency_per_token": variable((), spent[-2] / ids.size, "s", "latency per token"),
    }, coords={"position": np.arange(nll.size), "state": np.arange(len(err)), "bucket": list(BUCKETS)},
        attrs={"tokens": int(ids.size), "window": int(window)})
