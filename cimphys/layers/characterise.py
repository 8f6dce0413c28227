"""The disk cache of characterised tiles and calibrated ADC ranges.

Characterising a whole model's tiles (:mod:`cimphys.circuits.tile_characterise`: each tile's
transfer matrix ``T`` and input admittance ``Y`` with every wire, driver and sense resistance)
takes tens of seconds, so each matrix's ``(T, Y)`` per row block is stored as
``<cache_dir>/<key>.npz`` (float32: ``sensed`` holds ``T`` (row blocks, tiles, N, M), ``row_g``
holds ``Y`` (row blocks, tiles, M, M)) with ``key`` the SHA-256 of the weights' bytes, every
input of the configuration (:meth:`CimConfig.identity`: the tile card's and the device card's
full contents and every layer-level field), the seed and a format version; the calibrated ADC
ranges of a whole model are stored next to them (``<key>.ranges.npz``, keyed by the
configuration, seed, calibration tokens and all weights).
``cache_dir`` is, in order: the ``cache_dir`` argument, the environment variable
``CIMPHYS_CACHE_DIR``, or ``~/.cache/cimphys/tiles``.  Delete the folder to clear it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .config import CimConfig

__all__ = ["CACHE_ENV", "cache_key", "default_cache_dir", "load_cached", "load_ranges", "save_cached", "save_ranges"]

CACHE_ENV = "CIMPHYS_CACHE_DIR"
CACHE_VERSION = "h7-tiles-TY-1"


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The tile cache folder: argument, else $CIMPHYS_CACHE_DIR, else ~/.cache/cimphys/tiles."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "cimphys" / "tiles"


def cache_key(w: np.ndarray, cfg: CimConfig, seed) -> str:
    """SHA-256 of the weights, the configuration and the seed."""
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(repr(cfg.identity()).encode())
    h.update(repr(seed).encode())
    w = np.ascontiguousarray(w, dtype=np.float32)
    h.update(repr(w.shape).encode())
    h.update(w.tobytes())
    return h.hexdigest()


def load_cached(folder: Path, key: str):
    """``(sensed, row_g)`` of :attr:`AnalogMatrix.characterised` from the cache, or None."""
    path = folder / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return data["sensed"], data["row_g"]
    except (OSError, KeyError, ValueError):  # a damaged entry is recomputed, never trusted
        return None


def save_cached(folder: Path, key: str, sensed: np.ndarray, row_g: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    tmp = folder / f"{key}.{os.getpid()}.part.npz"
    np.savez(tmp, sensed=sensed, row_g=row_g)
    tmp.replace(path)
    return path


def save_ranges(folder: Path, key: str, ranges: dict) -> Path:
    """Store calibrations ``{(op, layer): AnalogMatrix.calibration}`` as ``<key>.ranges.npz``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.ranges.npz"
    tmp = folder / f"{key}.{os.getpid()}.part.npz"
    np.savez(tmp, **{f"{op}@{layer}": fs for (op, layer), fs in ranges.items()})
    tmp.replace(path)
    return path


def load_ranges(folder: Path, key: str):
    """``{(op, layer): calibration}`` stored by :func:`save_ranges`, or None."""
    path = folder / f"{key}.ranges.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return {(k.split("@")[0], int(k.split("@")[1])): data[k] for k in data.files}
    except (OSError, KeyError, ValueError):
        return None
