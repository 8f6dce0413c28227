"""The disk cache of characterised tiles and calibrated ADC ranges.

Characterising a whole model's tiles (:mod:`cimphys.circuits.tile_characterise`: each tile's
transfer matrix ``T`` and, for drivers with several levels, its input admittance ``Y``, with
every wire, driver and sense resistance) takes tens of seconds, so each matrix's ``(T, Y)`` per
row block is stored as an entry of :mod:`cimphys.cache` (``<cache_dir>/<key>.npz``: key over
every input, content hash checked on read, atomic writes; a damaged entry is named in a warning
and recomputed).  The entry holds float64 (so that a run from the cache equals one without it, bit for bit) ``sensed``, ``T`` (row blocks, tiles, N, M), and
``row_g``, ``Y`` (row blocks, tiles, M, M), or an empty array where binary drivers need no ``Y``,
and the tiles' solve reports (``report_<field>``, (row blocks, tiles) each:
:meth:`cimphys.circuits.tile_report.StackReport.arrays`).
:func:`cache_key` covers the weights (dtype, shape, bytes), every input of the configuration
(:meth:`CimConfig.identity`: the tile card's and the device card's full contents and every
layer-level field), the seed and :data:`CACHE_VERSION`.  The calibrated ADC ranges of a whole
model are stored next to them (``<key>.ranges.npz``, keyed by the caller: the configuration,
seed, calibration tokens and all weights), and so is a dynamic device card's write-verify
statistics (``<key>.stats.npz``, :func:`cached_device_statistics`: seconds of Monte-Carlo per
engine, shared by repeated runs and the error budget's rows).
``cache_dir`` is, in order: the ``cache_dir`` argument, the environment variable
``CIMPHYS_CACHE_DIR``, or ``~/.cache/cimphys/tiles``.  Delete the folder to clear it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..cache import EntryCache
from ..cache import cache_key as _entry_key
from ..circuits.tile_report import FIELDS as REPORT_FIELDS
from .config import CimConfig

__all__ = ["CACHE_ENV", "RANGE_PARTS", "cache_key", "default_cache_dir", "load_cached", "load_ranges", "pack_ranges",
           "save_cached", "save_ranges", "unpack_ranges"]

CACHE_ENV = "CIMPHYS_CACHE_DIR"
CACHE_VERSION = "h7-tiles-TY-4"  # 2: wide tiles by reciprocity (T differs in the last bits); 3: solve reports;
#                                   4: the reports say which tiles were checked (report_checked)


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The tile cache folder: argument, else $CIMPHYS_CACHE_DIR, else ~/.cache/cimphys/tiles."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "cimphys" / "tiles"


def cache_key(w: np.ndarray, cfg: CimConfig, seed) -> str:
    """Key of the tile entry of weights ``w`` under ``cfg`` and ``seed`` (see the module doc).

    Every input of the characterisation enters it: the weights as float32 (what the mapping
    reads), every input of ``cfg`` (:meth:`CimConfig.identity`, the device card's contents
    included), and the seed.
    """
    w = np.ascontiguousarray(w, dtype=np.float32)
    return _entry_key("tiles", CACHE_VERSION, cfg.identity(), seed, w)


def load_cached(folder: Path, key: str):
    """``(T, Y, reports)`` stacks of entry ``key`` (``Y`` empty for binary drivers; ``reports``
    ``{field: (row blocks, tiles)}``), or None.

    A damaged or edited entry is named in a :class:`~cimphys.errors.CacheWarning`, deleted and
    reported as a miss (:class:`cimphys.cache.EntryCache`).
    """
    data = EntryCache(folder).load(key, ("sensed", "row_g", *(f"report_{f}" for f in REPORT_FIELDS)))
    if data is None:
        return None
    return data["sensed"], data["row_g"], {f: data[f"report_{f}"] for f in REPORT_FIELDS}


def save_cached(folder: Path, key: str, t: np.ndarray, y: np.ndarray, reports: dict) -> Path | None:
    """Store ``(T, Y)`` and the solve ``reports`` ``{field: (row blocks, tiles)}`` as entry ``key``;
    None where the folder cannot be written."""
    return EntryCache(folder).save(key, {"sensed": t, "row_g": y, **{f"report_{f}": reports[f] for f in REPORT_FIELDS}})


def save_ranges(folder: Path, key: str, ranges: dict) -> Path | None:
    """Store calibrations ``{(op, layer): array}`` as ``<key>.ranges.npz``."""
    return EntryCache(folder, ".ranges.npz").save(key, {f"{op}@{layer}": fs for (op, layer), fs in ranges.items()})


def load_ranges(folder: Path, key: str):
    """``{(op, layer): array}`` stored by :func:`save_ranges`, or None (checked like every entry,
    :class:`cimphys.cache.EntryCache`)."""
    data = EntryCache(folder, ".ranges.npz").load(key)
    if data is None:
        return None
    return {(k.split("@")[0], int(k.split("@")[1])): v for k, v in data.items()}


#: Enters the device-statistics key; bump it when what the entry holds changes.
STATISTICS_VERSION = "device-statistics-1"


def devices_code_digest() -> str:
    """SHA-256 of the source of every module of :mod:`cimphys.devices` (laws included): the
    write-verify Monte-Carlo runs through many of them, so any edit there invalidates a stored
    statistics entry rather than let an old one stand in for the new code."""
    import hashlib

    from .. import devices

    h = hashlib.sha256()
    root = Path(devices.__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def cached_device_statistics(folder: Path, card, *, g_min: float, g_max: float, v_read: float, bandwidth: float,
                             temperature: float | None, seed: int):
    """A dynamic device card's write-verify statistics (:mod:`cimphys.devices.programming_statistics`)
    through the disk cache, or None for a card whose statistics are closed-form (PCM: cheap).

    The key covers every input of :func:`~cimphys.devices.programming_statistics.device_statistics`:
    the card's parsed content (:func:`cimphys.cards.card_digest`), the window ``g_min``/``g_max``
    (S), ``v_read`` (V), ``bandwidth`` (Hz), ``temperature`` (K or None), the Monte-Carlo ``seed``,
    the statistics' time, and the source of every device module (:func:`devices_code_digest`).  On
    a miss the statistics are computed and stored (``<key>.stats.npz``: arrays and JSON, never
    pickle); a damaged entry is named in a warning and recomputed.
    """
    from ..cards import card_digest
    from ..devices.cell_array import STATISTICS_TIME
    from ..devices.programming_statistics import device_statistics
    from ..devices.statistics_arrays import statistics_arrays, statistics_from_arrays

    if card.model == "pcm_statistical":
        return None
    inputs = dict(g_min=float(g_min), g_max=float(g_max), v_read=float(v_read), bandwidth=float(bandwidth),
                  temperature=None if temperature is None else float(temperature))
    key = _entry_key(STATISTICS_VERSION, card_digest(card), inputs, int(seed), STATISTICS_TIME,
                     devices_code_digest())
    store = EntryCache(Path(folder), ".stats.npz")
    data = store.load(key, ("level", "error", "pulses", "energy", "fields"))
    if data is not None:
        return statistics_from_arrays(card, data, temperature)
    stats = device_statistics(card, t=STATISTICS_TIME, seed=int(seed), **inputs)
    store.save(key, statistics_arrays(stats))
    return stats


RANGE_PARTS = ("lo", "hi", "gain", "offset")


def pack_ranges(ranges: dict) -> dict:
    """``{(op, layer): calibration dict}`` as ``{(op.part, layer): array}`` for the range cache."""
    return {(f"{op}.{part}", layer): cal[part] for (op, layer), cal in ranges.items() for part in RANGE_PARTS}


def unpack_ranges(flat: dict) -> dict:
    """The inverse of :func:`pack_ranges`."""
    out: dict = defaultdict(dict)
    for (name, layer), value in flat.items():
        op, part = name.rsplit(".", 1)
        out[(op, layer)][part] = value
    return dict(out)
