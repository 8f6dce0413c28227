"""One call from a model and a circuit configuration to the fidelity/energy report.

:func:`run_model` encodes sentences twice, in fp32 and on CIM tiles, after calibrating the
ADC ranges on a separate calibration batch, and returns :func:`~cimphys.layers.report.build_report`'s
Dataset.  It is what ``cimphys run`` calls.

Examples
--------
>>> from cimphys.layers import run_model, CimConfig            # doctest: +SKIP
>>> ds = run_model(sentences=10, config=CimConfig(r_wl=1.0, r_bl=1.0))   # doctest: +SKIP
>>> float(ds.retrieval_spearman)                                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..circuits.tile_report import StackReport
from ..errors import InputError
from .config import CimConfig
from .engine import AnalogEngine
from .matmul import DigitalEngine
from .models import build_model, load_model
from .report import build_report
from .routing import Routing
from .sentences import CALIBRATION
from .sentences import sentences as bundled
from .transformer import BertEncoder
from .weights import ModelWeights

__all__ = ["N_CALIBRATION", "run_model"]

N_CALIBRATION = len(CALIBRATION)  # bundled calibration sentences, none of them evaluated


def cell_attrs(cells, matrices) -> dict:
    """What a tile card's ``[cell]`` table adds to the run's attributes: the cells, how reads are
    solved and, for the chord surrogate, its largest and rms error against exact Newton reads
    (relative to a full column's current, over every matrix's sampled tile)."""
    if cells is None:
        return {}
    out = {"cell": cells.kind, "cell_read": cells.read}
    checks = [m.cell_surrogate for m in matrices if m.cell_surrogate is not None]
    if checks:
        out.update(cell_surrogate_error_max=max(c["max"] for c in checks),
                   cell_surrogate_error_rms=float(np.sqrt(np.mean([c["rms"] ** 2 for c in checks]))),
                   cell_surrogate_reads=sum(c["reads"] for c in checks))
    return out


def _sentences(sentences) -> list[str]:
    if sentences is None:
        return bundled()
    if isinstance(sentences, (int, np.integer)) and not isinstance(sentences, bool):
        return bundled(int(sentences))
    if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences) or len(sentences) == 0:
        raise InputError(f"sentences: expected a count or a non-empty list of strings, got {sentences!r:.60}")
    return list(sentences)


def run_model(model: str | Path | ModelWeights | BertEncoder | None = None, sentences: int | Sequence[str] | None = None,
              config: CimConfig | None = None, routing: Routing | None = None, *, seed: int = 0,
              calibration: Sequence[str] | None = None, cache_dir=None, use_cache: bool = True,
              on_matrix=None, engine: AnalogEngine | None = None):
    """Encode ``sentences`` in fp32 and on CIM tiles; return the report Dataset.

    Parameters
    ----------
    model : folder, ModelWeights or BertEncoder, optional
        Default: the bundled all-MiniLM-L6-v2.
    sentences : int or list of str, optional
        A count of bundled sentences, or the sentences (default: all 60 bundled).
    config, routing, seed, cache_dir, use_cache, on_matrix
        See :class:`~cimphys.layers.engine.AnalogEngine`.
    calibration : list of str, optional
        ADC calibration batch (default: the 8 bundled calibration sentences); must be disjoint
        from ``sentences``.
    engine : AnalogEngine, optional
        An engine already programmed and calibrated (sweeps reuse it); the others are ignored.
    """
    if not isinstance(model, BertEncoder):
        weights = model if isinstance(model, ModelWeights) else load_model(model)
        model = build_model(weights)
        if not isinstance(model, BertEncoder):
            raise InputError("model: run_model encodes sentences and needs a BERT encoder; use AnalogEngine "
                             "with GPT2Decoder.forward for decoders")
    texts = _sentences(sentences)
    ref_emb, ref_states, mask = model.encode(texts, DigitalEngine(), return_states=True)
    engine_new = engine is None
    calib = list(calibration) if calibration is not None else list(CALIBRATION)
    overlap = set(calib) & set(texts)
    if engine_new and overlap:
        raise InputError(f"calibration: {len(overlap)} calibration sentence(s) are also evaluated (e.g. "
                         f"{next(iter(overlap))!r:.60}); ADC ranges must come from inputs disjoint from those evaluated")
    if engine_new:
        engine = AnalogEngine(config, routing, seed=seed, cache_dir=cache_dir, use_cache=use_cache,
                              on_matrix=on_matrix)
        cal_ids, cal_mask = model.tokenize(calib)
        with engine.padding_off(cal_mask):  # ADC ranges from the real tokens, as the run reads them
            engine.calibrate(model, cal_ids, cal_mask)
    engine.reset_stats()
    with engine.padding_off(mask):  # the padding positions of `texts`, as encode pads them
        emb, states, _ = model.encode(texts, engine, return_states=True)
    cfg = engine.cfg
    device = cfg.device_card
    attrs = {"model": str(model.weights.path), "card": cfg.card_name, "seed": engine.seed,
             "adc_bits": cfg.adc_bits, "adc_kind": str(cfg.design.adc["kind"]), "sense_mode": cfg.design.mode,
             "r_wire_per_cell_ohm": cfg.design.r_wire, "rows": cfg.mapping.rows,
             "cols": cfg.mapping.cols, "weight_bits": cfg.mapping.weight_bits, "input_bits": cfg.mapping.input_bits,
             "sign_encoding": cfg.mapping.sign, "programming": cfg.programming,
             "device_card": "" if device is None or cfg.programming != "device" else device.name,
             "time_s": cfg.time, "temperature_k": cfg.temperature,
             "analog_ops": ",".join(sorted(engine.routing.analog)),
             "tile_solver": ",".join(sorted({s.solver_path for m in engine.matrices.values() for s in m.stacks})),
             **StackReport.join(s.solve_report for m in engine.matrices.values() for s in m.stacks).attrs(),
             "calibration_sentences": len(calib) if engine_new else 0}
    attrs.update(cell_attrs(cfg.design.cells, engine.matrices.values()))
    return build_report(engine, emb, states, ref_emb, ref_states, mask, sentences=texts, attrs=attrs)
