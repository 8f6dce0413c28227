"""Characterise the ADC of a card (an ``adc`` card, or a ``tile`` card's [adc] table) like a lab:
IEEE Std 1241 sine histogram and sine-fit tests; prints ENOB, SNDR, INL and DNL, and writes the
curves as NetCDF and a PNG plot."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", help="circuit card name or path (model 'adc' or 'tile')")
    parser.add_argument("--samples", type=int, default=1 << 18, help="samples per test (default 2**18)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stimulus phase and the ADC noise")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an ADC parameter, e.g. --set cap_mismatch_sigma=0.02 (repeatable)")
    parser.add_argument("-o", "--out", default=None, help="output folder (default: adc_<card name>)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG plot")


def _overrides(pairs: list[str]) -> dict:
    import tomllib

    from ..errors import InputError

    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set: expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()  # a bare string such as kind=flash
    return out


def _plot(ds, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    ax1.plot(ds.code, ds.dnl, lw=0.8)
    ax1.set_ylabel("DNL (LSB)")
    ax2.plot(ds.transition, ds.inl, lw=0.8, color="C1")
    ax2.set_ylabel("INL (LSB)")
    ax2.set_xlabel("code")
    ax1.set_title(f"{ds.attrs['kind']} {ds.attrs['bits']}-bit: ENOB {float(ds.enob):.2f} bit, "
                  f"SNDR {float(ds.sndr):.1f} dB")
    fig.tight_layout()
    from ..results import replacing

    with replacing(path) as tmp:  # never a half-written PNG under the final name
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..cards import load_circuit
    from ..circuits.adc import ADC
    from ..circuits.characterise import characterise
    from ..errors import CardError
    from ..results import save

    card = load_circuit(args.card)
    if card.model not in ("adc", "tile"):
        raise CardError(f"{card.name}: expected an 'adc' or 'tile' card, got model {card.model!r}")
    adc = ADC.from_card(card, **_overrides(args.set))
    ds = characterise(adc, n_samples=args.samples, seed=args.seed)
    out = Path(args.out or f"adc_{card.name}")
    print(f"{card.name}: {adc.kind} ADC, {adc.bits} bits, {args.samples} samples per test")
    print(f"  ENOB      {float(ds.enob):8.3f} bit")
    print(f"  SNDR      {float(ds.sndr):8.2f} dB")
    print(f"  max |INL| {float(ds.max_abs_inl):8.4f} LSB")
    print(f"  max |DNL| {float(ds.max_abs_dnl):8.4f} LSB")
    print(f"  energy    {adc.energy_per_conversion(float(ds.enob)):8.3e} J per conversion (at the measured ENOB)")
    files = [save(ds, out / "adc_characterisation.nc")]
    if not args.no_plot:
        files.append(out / "adc_inl_dnl.png")
        _plot(ds, files[-1])
    for path in files:
        print(f"wrote {path}")
    return 0
