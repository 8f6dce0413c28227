"""Cost of the checked disk cache (cimphys.cache) against plain NumPy archives.

An entry of the size of one characterised MiniLM matrix (the ``ffn_up`` weights 384 x 1536 on
128 x 128 tiles: 3 x 12 tiles of 128 x 128 float64 transfer matrices, 3.5 MiB, plus its row
sums; 64 x 64 tiles with ``quick``):

1. ``EntryCache.save`` (content SHA-256, header, unique temporary, fsync, rename) against the
   least any checked, durable, atomic write costs: ``hashlib.sha256`` of the arrays,
   ``np.savez`` to a temporary file, ``os.fsync``, ``os.replace`` over the old entry (which
   frees the old entry's blocks: 6 ms here); target: at most 1.5x.
2. ``EntryCache.load`` (magic check, header, member check, SHA-256 of the content) against the
   least any checked read costs: ``np.load`` of every member plus ``hashlib.sha256`` of them;
   target: at most 1.5x.

The hash is most of either (SHA-256 runs at ~0.5 GB/s on the loaded 2-core machine, 9 ms for
this entry), and both are milliseconds against the tens of seconds a characterisation costs,
so the targets guard against an accidental copy or re-read of the data, not the hash itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

try:
    from _common import Record, best_of, main
except ImportError:  # imported as benchmarks._common (e.g. from the test suite)
    from benchmarks._common import Record, best_of, main

from cimphys.cache import EntryCache, cache_key


def _arrays(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    n = 64 if quick else 128
    return {"sensed": rng.standard_normal((3, 12, n, n)), "row_g": rng.uniform(0, 1e-3, (3, 12, n))}


def run(quick: bool = False) -> list[Record]:
    arrays = _arrays(quick)
    megabytes = sum(a.nbytes for a in arrays.values()) / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = EntryCache(folder)
        key = cache_key("bench")
        plain = folder / "plain.npz"

        def plain_save():
            for a in arrays.values():
                hashlib.sha256(np.ascontiguousarray(a).reshape(-1).view(np.uint8)).digest()
            tmp = plain.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, plain)

        def plain_load():
            with np.load(plain) as data:
                out = {k: data[k] for k in data.files}
            for a in out.values():
                hashlib.sha256(a.reshape(-1).view(np.uint8)).digest()
            return out

        t_save = best_of(lambda: cache.save(key, arrays), repeat=7)
        t_plain_save = best_of(plain_save, repeat=7)
        t_load = best_of(lambda: cache.load(key, ("sensed", "row_g")), repeat=7)
        t_plain_load = best_of(plain_load, repeat=7)
    note = f"{megabytes:.1f} MiB entry"
    return [
        Record("cache entry write (hash + fsync + rename)", t_save, "sha256 + np.savez + fsync + rename", t_plain_save,
               "s", 1.5, lower_is_better=True, notes=note),
        Record("cache entry read (checks + SHA-256)", t_load, "np.load + sha256", t_plain_load, "s", 1.5,
               lower_is_better=True, notes=note),
    ]


if __name__ == "__main__":
    main(run)
