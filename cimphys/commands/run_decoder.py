"""``cimphys run --model smollm2``: a decoder LLM's perplexity on CIM tiles against float32.

Scores the bundled public-domain text (the Preamble and Article I of the U.S. Constitution,
:mod:`cimphys.layers.corpus`, 2 990 tokens with SmolLM2's tokenizer; ``--tokens`` takes the
first N) in windows of 512 tokens, in float32 and on the tiles of the card, and prints the two
perplexities, the per-block hidden-state error and the energy per token; writes report.nc
and, unless --no-plots, layer_error.png and energy.png.  The tiles are calibrated on the
text's first 64 tokens (they are also scored: calibration sets only ADC ranges).
"""

from __future__ import annotations

from pathlib import Path

WINDOW = 512


def _summary(ds) -> str:
    energy = ", ".join(f"{b} {float(ds.energy_per_token.sel(bucket=b)) * 1e9:.3g}" for b in ds.bucket.values)
    return "\n".join([
        f"model      {ds.attrs['model']}",
        f"card       {ds.attrs['card']}",
        f"text       {ds.attrs['tokens']} tokens (U.S. Constitution, Preamble and Article I), windows of "
        f"{ds.attrs['window']}",
        f"perplexity fp32 {float(ds.perplexity_fp32):.4f}, CIM {float(ds.perplexity_cim):.4f}",
        f"next-token agreement {float(ds.top1_agreement):.4f}, KL(fp32||CIM) {float(ds.kl_divergence):.4g} nat",
        "hidden-state error per block: " + " ".join(f"{v:.3g}" for v in ds.hidden_error.values),
        f"energy/token {float(ds.energy_per_token.sum()) * 1e9:.4g} nJ ({energy} nJ)",
        f"latency/token {float(ds.latency_per_token) * 1e6:.4g} us",
    ])


def _plots(ds, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (("layer_error.png", lambda ax: (ax.semilogy(ds.state.values, ds.hidden_error.values.clip(1e-12),
                                                                    "o-"),
                                                         ax.set_xlabel("hidden state (0: embeddings, k: after block k)"),
                                                         ax.set_ylabel("relative error vs fp32"))),
                       ("energy.png", lambda ax: (ax.bar(ds.bucket.values, ds.energy_per_token.values * 1e9),
                                                  ax.set_ylabel("energy per token (nJ)")))):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax)
        fig.tight_layout()
        written.append(out / name)
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def run_decoder(args, weights, cfg, routing) -> int:
    from ..errors import InputError
    from ..layers import build_model
    from ..layers.corpus import CONSTITUTION
    from ..layers.decoding import calibrate, perplexity_report
    from ..layers.engine import AnalogEngine
    from ..progress import Progress
    from ..results import save

    model = build_model(weights)
    ids = model.tokenizer.encode(CONSTITUTION)
    if args.tokens is not None:
        if args.tokens < 2:
            raise InputError(f"--tokens: expected at least 2, got {args.tokens}")
        ids = ids[:args.tokens]
    n_static = model.n_layers * len(routing.analog & {"query", "key", "value", "attn_out", "ffn_up", "ffn_down"})
    with Progress(n_static, "programming tiles") as bar:
        eng = AnalogEngine(cfg, routing, seed=args.seed, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           on_matrix=lambda op, layer, cached: bar.advance(), streaming=True)
        calibrate(model, eng)
    ds = perplexity_report(model, ids, eng, window=WINDOW)
    ds.attrs.update(model=str(weights.path), card=cfg.card_name, seed=args.seed, rows=cfg.mapping.rows,
                    cols=cfg.mapping.cols, analog_ops=",".join(sorted(routing.analog)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [save(ds, out / "report.nc")]
    print(_summary(ds))
    if not args.no_plots:
        written += _plots(ds, out)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
