"""Export a device card programmed into a tile as other simulators' inputs.

Runs the tile physics once (:func:`cimphys.export.error_model`: the device card's programming
statistics in a ``tile`` circuit card's crossbar, DACs, sense amplifiers and ADC) and writes, for
each ``--to`` target, the files named on the last lines:

* ``crosssim``: ``crosssim.json``, a Sandia CrossSim 3.2 parameter file
  (``CrossSimParameters.from_json`` reads it) and ``crosssim.notes.json`` beside it;
* ``aihwkit``: ``aihwkit.json``, the IBM aihwkit inference vocabulary;
* ``netcdf``: ``error_model.nc``, the look-up table of error mean and std against ADC bits, input
  and weight magnitude, with units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TARGETS = ("crosssim", "aihwkit", "netcdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", help="device card name or path (pcm_statistical or a dynamic memristor model)")
    parser.add_argument("--to", action="append", choices=TARGETS, metavar="|".join(TARGETS),
                        help="what to write (repeatable; default: all three)")
    parser.add_argument("--tile", default="isaac_128x128", help="tile circuit card (default isaac_128x128)")
    parser.add_argument("--adc-bits", type=int, nargs="+", default=[4, 6, 8],
                        help="ADC resolutions to tabulate; the files for CrossSim and aihwkit use the last")
    parser.add_argument("--rows", type=int, help="use a rows x cols corner of the tile (default: all of it)")
    parser.add_argument("--cols", type=int)
    parser.add_argument("--tiles", type=int, default=4, help="programmed tiles per weight magnitude (default 4)")
    parser.add_argument("--batch", type=int, default=64, help="input vectors per tile and setting (default 64)")
    parser.add_argument("--t-inference", type=float, default=3600.0, help="time from programming to read, s")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    parser.add_argument("-o", "--out", type=Path, default=Path("export"), help="output folder (default: export)")


def main(args: argparse.Namespace) -> int:
    from ..export import error_model, write_aihwkit, write_crosssim, write_lut

    model = error_model(args.card, args.tile, adc_bits=tuple(args.adc_bits), t_inference=args.t_inference,
                        n_tiles=args.tiles, batch=args.batch, rows=args.rows, cols=args.cols, seed=args.seed)
    bits = int(model.adc_bits.values[-1])
    out = Path(args.out)
    written = []
    for target in args.to or TARGETS:
        if target == "crosssim":
            path = write_crosssim(model, out / "crosssim.json", adc_bits=bits)
            written += [path, path.with_name(path.stem + ".notes.json")]
        elif target == "aihwkit":
            written.append(write_aihwkit(model, out / "aihwkit.json", adc_bits=bits))
        else:
            written.append(write_lut(model, out / "error_model.nc"))
    std = float(model.error_std.sel(adc_bits=bits).isel(input_magnitude=-1, weight_magnitude=-1))
    print(f"{model.attrs['device_card']} on {model.attrs['circuit_card']} ({model.attrs['rows']}x{model.attrs['cols']}): "
          f"MVM error std {std:.4g} (normalised output) at {bits}-bit ADC, full-scale inputs and weights")
    for path in written:
        print(f"wrote {path}")
    return 0
