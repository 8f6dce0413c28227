"""Run a campaign file: a sweep over its axes, streamed into a resumable Zarr store.

Running the same campaign again with the same store resumes it: finished points are kept and
only the rest is computed.  A store written by another campaign is refused unless --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", type=Path, help="campaign TOML file (see cimphys.campaign)")
    parser.add_argument("--store", type=Path, help="Zarr store (default: the file's [store] path)")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing store first")
    parser.add_argument("--scheduler", default=None,
                        help="processes (default), serial, dask (local cluster), or tcp://host:port")
    parser.add_argument("--workers", type=int, default=None, help="local processes or Dask workers")
    parser.add_argument("-o", "--output", type=Path, help="also save the result as NetCDF here")
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def main(args: argparse.Namespace) -> int:
    from ..campaign import load_campaign
    from ..results import save

    campaign = load_campaign(args.campaign)
    store = args.store if args.store is not None else campaign.store
    where = f" -> {store}" if store else ""
    print(f"campaign {campaign.name}: {campaign.n_points} points over {', '.join(campaign.axes)}{where}")
    ds = campaign.run(store=store, overwrite=args.overwrite, scheduler=args.scheduler,
                      workers=args.workers, progress=False if args.no_progress else None)
    for name, var in ds.data_vars.items():
        values = var.values
        print(f"  {name:24s} [{var.attrs.get('units', '?')}] min {values.min():.4g} max {values.max():.4g}")
    if args.output:
        print(f"wrote {save(ds, args.output)}")
    return 0
