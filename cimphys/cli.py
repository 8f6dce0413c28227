"""The ``cimphys`` command.

Each subcommand lives in ``cimphys/commands/NAME.py`` with two functions,
``add_arguments(parser)`` and ``main(args) -> int``; those modules import nothing heavy at
module level, so ``cimphys --help`` starts without compiling or importing Numba.  An error
prints one line to stderr and exits 1 (2 for bad usage); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._version import __version__

# (name, module, one-line help) in the order --help lists them.
COMMANDS = (
    ("cards", "cimphys.commands.cards", "list the device and circuit cards, or show one with its provenance"),
    ("sweep", "cimphys.commands.sweep", "run a campaign file as a resumable sweep (local processes or Dask)"),
    ("validate", "cimphys.commands.validate", "run the validation campaigns and write report.md"),
    ("crossbar", "cimphys.commands.crossbar", "solve a linear crossbar from a .npz (G, v_in): NetCDF + heat map + IR-drop loss"),
    ("adc", "cimphys.commands.adc", "characterise a card's ADC (IEEE 1241): ENOB, SNDR, INL/DNL, with plots"),
    ("bench", "cimphys.commands.bench", "run the benchmarks of a source checkout and print their tables"),
    ("run", "cimphys.commands.run", "run a transformer's matmuls on CIM tiles; report fidelity, energy, latency"),
    ("generate", "cimphys.commands.generate", "generate text with a decoder LLM on CIM tiles next to fp32; energy per token"),
    ("device", "cimphys.commands.device", "run a device card under a sweep or pulse train: NetCDF + I-V or G-vs-pulse plot"),
    ("calibrate", "cimphys.commands.calibrate", "fit a device law to measured I-V sweeps; write the card with provenance and a plot"),
    ("export", "cimphys.commands.export", "export a device card in a tile for CrossSim, aihwkit, or as a NetCDF error table"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cimphys",
        description="Device-to-circuit physics of compute-in-memory hardware for LLM inference.",
    )
    parser.add_argument("--version", action="version", version=f"cimphys {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.main(args) or 0)
    except KeyboardInterrupt:
        print("cimphys: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback is for --debug
        if args.debug:
            raise
        name = type(exc).__name__
        print(f"cimphys {args.command}: error: {name}: {exc}".replace("\n", " "), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
