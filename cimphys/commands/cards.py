"""List the device and circuit cards that load by name, or show one with its provenance."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="card name or path to show (omit to list all)")
    parser.add_argument("--kind", choices=("device", "circuit"), help="restrict to one kind of card")


def main(args: argparse.Namespace) -> int:
    from ..cards import list_cards, load_card
    from ..errors import CardError

    if args.name is None:
        refs = list_cards(args.kind)
        width = max((len(r.name) for r in refs), default=4)
        for ref in refs:
            card = load_card(ref.path, ref.kind)
            print(f"{ref.kind:8s} {ref.name:{width}s}  {card.model:14s} {card.provenance['source']}")
        return 0
    kinds = (args.kind,) if args.kind else ("device", "circuit")
    errors = []
    for kind in kinds:
        try:
            card = load_card(args.name, kind)
            break
        except CardError as exc:
            errors.append(exc)
    else:
        raise errors[0] if len(errors) == 1 or "no " not in str(errors[0]) else errors[-1]
    print(card.to_toml().rstrip())
    if card.path:
        print(f"# file: {card.path}")
    return 0
