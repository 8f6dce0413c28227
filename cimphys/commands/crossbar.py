"""Solve a linear crossbar with wire resistance from a .npz (G and v_in) and save the result.

The .npz holds ``G`` (M, N) in S and ``v_in`` (M,) or (batch, M) in V, and may hold
``r_wl``, ``r_bl``, ``r_driver``, ``r_sense`` in ohm (options on the command line win).
Writes ``crossbar.nc`` (node voltages, currents, power, ideal currents and IR-drop loss) and
``crossbar.png`` (node-voltage heat maps and the IR-drop loss per column) to the output folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

_DEFAULT_R = {"r_wl": 1.0, "r_bl": 1.0, "r_driver": 0.0, "r_sense": 0.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help=".npz with G (M, N) in S and v_in (M,) or (batch, M) in V")
    for name, default in _DEFAULT_R.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=float, dest=name, help=f"ohm (default: from the .npz, else {default:g})")
    parser.add_argument("-o", "--out-dir", type=Path, default=Path("."), help="output folder (default: .)")


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from ..circuits import Crossbar
    from ..errors import InputError
    from ..results import save

    data = _load(args.input)
    resist = {k: (getattr(args, k) if getattr(args, k) is not None else data.get(k, d)) for k, d in _DEFAULT_R.items()}
    if "G" not in data or "v_in" not in data:
        raise InputError(f"{args.input}: expected arrays 'G' and 'v_in', found {sorted(data)}")
    xb = Crossbar(data["G"], **resist)
    sol = xb.solve(data["v_in"])
    ds = _with_ir_drop(sol.to_xarray(), xb.G, sol)
    ds.attrs.update({k: float(np.max(v)) for k, v in resist.items()})
    ds.attrs["input"] = str(args.input)
    out = Path(args.out_dir)
    written = [save(ds, out / "crossbar.nc"), _plot(ds, out / "crossbar.png")]
    for path in written:
        print(path)
    return 0


def _load(path: Path) -> dict:
    import numpy as np

    from ..errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz ({exc})") from exc


def _with_ir_drop(ds, g, sol):
    """Add the ideal currents ``G.T @ v_in`` and the relative IR-drop loss per column."""
    import numpy as np

    from ..results import variable

    ideal = sol.v_in @ g
    safe = np.where(ideal != 0, ideal, 1.0)
    loss = np.where(ideal != 0, (ideal - sol.i_out) / np.abs(safe), 0.0)
    dims = ds["i_out"].dims
    ds["i_ideal"] = variable(dims, ideal, "A", "ideal output current G.T @ v_in (no wire resistance)")
    ds["ir_drop_loss"] = variable(dims, loss, "1", "relative output loss to IR drop, (ideal - actual) / |ideal|")
    return ds


def _plot(ds, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = ds.isel(batch=0) if "batch" in ds.dims else ds
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, name in zip(axes, ("v_wl", "v_bl")):
        im = ax.imshow(first[name].values, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set(title=first[name].attrs["long_name"], xlabel="column (bit line)", ylabel="row (word line)")
        fig.colorbar(im, ax=ax, label=first[name].attrs["units"])
    loss = ds["ir_drop_loss"].values.reshape(-1, ds.sizes["col"])
    axes[2].plot(100 * loss.T, color="tab:red", alpha=max(0.1, 1 / len(loss)))
    axes[2].set(title="IR-drop loss per column", xlabel="column (bit line)", ylabel="loss (%)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
