"""Draw the README's figure: the error budget of the default card (``docs/figures/error_budget.png``).

    python docs/make_figures.py            # redraw from docs/figures/budget.nc
    python docs/make_figures.py --run      # recompute the budget first (long: 9 full MiniLM runs)

The budget is :func:`cimphys.layers.budget.error_budget` on the default card (``isaac_128x128``:
every static projection of all-MiniLM-L6-v2 on its tiles, with the card's wires, seed 0) over
``--sentences`` bundled sentences: each physical effect alone over an ideal base (the mapping's
quantisation only), then all of them -- exactly what ``cimphys run --budget`` computes and saves as
``budget.nc``.  The committed ``budget.nc`` is the one ``cimphys run --budget --sentences 10``
wrote (the README's table); ``--run`` recomputes it (a cold run takes hours on 2 shared cores, the
tiles are cached in ``$CIMPHYS_CACHE_DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"


def compute(sentences: int, path: Path) -> Path:
    from cimphys import save
    from cimphys.layers import CimConfig, build_model, load_model
    from cimphys.layers.budget import error_budget

    ds = error_budget(build_model(load_model()), sentences, CimConfig(), seed=0)
    return save(ds.drop_vars("effect_description"), path)


def draw(budget_path: Path, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    from cimphys import open as open_result

    ds = open_result(budget_path)
    effects = list(ds.effect.values)
    loss = np.clip(1.0 - ds.embedding_cosine.values, 1e-6, None)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    colors = ["0.6" if e == "none" else "tab:red" if e == "all" else "tab:blue" for e in effects]
    ax.barh(effects[::-1], loss[::-1], color=colors[::-1])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel="1 - cosine of the output embedding to fp32", title="each effect alone, then all")
    states = ds.state.values[1:]
    for e in effects:
        if e in ("drift", "dac", "sense"):  # equal to the base on this card: declared ideal, read at t = 0
            continue
        style = dict(color="k", lw=2.2) if e == "all" else dict(color="0.6", ls="--") if e == "none" else {}
        bx.semilogy(states, ds.hidden_error.sel(effect=e).values[1:], marker="o", ms=3, label=e, **style)
    bx.set(xlabel="hidden state (after layer k)", ylabel="relative error vs fp32", title="layer by layer")
    bx.legend(fontsize=7, ncol=2)
    fig.suptitle(f"error budget of {ds.attrs['card']}: MiniLM, {int(ds.attrs['sentences'])} sentences, "
                 f"seed {int(ds.attrs['seed'])}", fontsize=10)
    bx.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="recompute budget.nc (long)")
    parser.add_argument("--sentences", type=int, default=10, help="bundled sentences for --run (default 10)")
    args = parser.parse_args(argv)
    FIGURES.mkdir(exist_ok=True)
    data = FIGURES / "budget.nc"
    if args.run or not data.is_file():
        print(f"wrote {compute(args.sentences, data)}")
    print(f"wrote {draw(data, FIGURES / 'error_budget.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
