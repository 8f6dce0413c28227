"""Disk cache entries: keyed by every input, checked on every read, written atomically.

Every disk cache of the package (the layer adapter's tile characterisations and ADC ranges,
:mod:`cimphys.layers.characterise`) stores its entries through this module, so that one set of
rules decides when a stored result may stand in for a computation.

Key
---
An entry is named by :func:`cache_key`: the SHA-256 (hex) of :data:`FORMAT_VERSION` followed
by a canonical encoding of every input of the cached result (:func:`canonical`), in which every
item is self-delimiting (a type tag, then a byte length or an item count) so that no two inputs
share an encoding:

- ``None``, ``bool``, ``int``, ``float`` (and their NumPy scalars), ``str``, ``bytes``: a type tag
  and the value (floats by their exact ``float.hex``, so ``0.1`` and ``0.1 + 1e-17`` differ);
- a NumPy array: its dtype, shape and C-order bytes (object arrays are refused);
- a dataclass: its class name and every field, sorted by name; a mapping: its items sorted by
  the encoding of their keys; a list or tuple: its items in order;
- a :class:`pathlib.Path` of a file: the SHA-256 of its bytes (a card file is keyed by what it
  says, not where it lies; :func:`cimphys.cards.card_digest` keys a card by its parsed content).

Anything else (an arbitrary object whose ``repr`` may hide its state) raises ``TypeError``:
a key never leaves out an input silently.

Entry
-----
``<folder>/<key><suffix>`` (suffix ``.npz`` by default) is an uncompressed NumPy ``.npz``
archive holding the named float/int arrays of the result and one more member,
``__cimphys_cache__``: UTF-8 JSON as a ``uint8`` array with ``format`` (:data:`FORMAT_VERSION`),
``key`` (the entry's own key) and ``sha256``, the digest of :func:`canonical` of the sorted
``{name: array}`` mapping of the stored arrays.  Reading opens the archive with
``allow_pickle=False`` and checks, in order: that it is a readable ``.npz`` archive, that the
header is present and its format and key are this entry's, that the members are exactly the
names asked for with no object arrays, and that the content digest matches.  An entry failing any
check (missing member, truncated, empty, bit-flipped, a ``.npy`` or text file under the entry's
name, an archive that needs pickle, an entry copied under another key, values edited without
their digest) is named in a :class:`~cimphys.errors.CacheWarning`, deleted, and reported as a
miss, so the caller recomputes it; it is never used.  The digest guards against damage and
careless edits, not against someone who rewrites the digest too: the cache folder is trusted
as much as the user's home directory.

Writing goes to a unique temporary file in the same folder (``tempfile.mkstemp``), is flushed
and ``fsync``-ed, then renamed over the entry (``os.replace``, atomic on POSIX), so a reader or
a second writer sees the old entry or the new one, never half of one, and a killed writer
leaves at most a ``.part`` file that no reader opens (deleted by the next save of that key once
it is an hour old).  A folder that cannot be created or
written is reported once (:class:`~cimphys.errors.CacheWarning`) and the run goes on without
the cache.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> cache = EntryCache(pathlib.Path(tempfile.mkdtemp()))
>>> key = cache_key("example", np.arange(3.0), {"r_wl": 1.0})
>>> cache.save(key, {"t": np.eye(2)}) is not None
True
>>> cache.load(key, ("t",))["t"].tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import CacheWarning

__all__ = ["FORMAT_VERSION", "EntryCache", "cache_key", "canonical"]

#: Enters every key and every entry's header; bump it when the encoding or layout changes.
FORMAT_VERSION = "cimphys-cache-1"
_HEADER = "__cimphys_cache__"
_PART = ".part"
#: Age after which a temporary of a key is taken for a killed writer's and deleted, s.
STALE_PART_SECONDS = 3600.0
_unwritable_reported: set[str] = set()


def canonical(obj) -> bytes:
    """The canonical byte encoding of ``obj`` that :func:`cache_key` hashes (see module doc)."""
    out = _Bytes()
    _encode(obj, out)
    return bytes(out)


class _Bytes(bytearray):
    """Collects an encoding (``update`` like a hashlib object)."""

    def update(self, data) -> None:
        self += data


def _put(h, tag: bytes, payload: bytes) -> None:
    h.update(tag + len(payload).to_bytes(8, "little"))
    h.update(payload)


def _encode(obj, h) -> None:
    """Feed the encoding of ``obj`` to ``h`` (a hashlib object or :class:`_Bytes`).

    Every item is self-delimiting (a tag, then a length or an item count), so the encoding of a
    sequence of items is unambiguous.  Array data go to ``h`` as a view: no copy of the bytes.
    """
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, (bool, np.bool_)):
        h.update(b"B1" if obj else b"B0")
    elif isinstance(obj, (int, np.integer)):
        _put(h, b"I", str(int(obj)).encode())
    elif isinstance(obj, (float, np.floating)):
        _put(h, b"F", float(obj).hex().encode())
    elif isinstance(obj, str):
        _put(h, b"S", obj.encode("utf-8", "surrogatepass"))
    elif isinstance(obj, bytes):
        _put(h, b"Y", obj)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("cache key: object arrays cannot be keyed (their bytes are pointers)")
        _put(h, b"A", json.dumps([obj.dtype.str, list(obj.shape)]).encode())
        data = np.ascontiguousarray(obj).reshape(-1).view(np.uint8)
        h.update(data.size.to_bytes(8, "little"))
        h.update(data)
    elif isinstance(obj, Path):
        _put(h, b"P", _file_digest(obj).encode())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(b"D")
        _encode(type(obj).__qualname__, h)
        _encode({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, h)
    elif isinstance(obj, Mapping):
        keys = sorted((canonical(k), i, k) for i, k in enumerate(obj))
        h.update(b"M" + len(keys).to_bytes(8, "little"))
        for encoded, _, k in keys:
            h.update(encoded)
            _encode(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update((b"L" if isinstance(obj, list) else b"T") + len(obj).to_bytes(8, "little"))
        for v in obj:
            _encode(v, h)
    else:
        raise TypeError(f"cache key: cannot key a {type(obj).__name__} ({obj!r:.60}); "
                        "pass its fields, arrays or a dataclass")


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise OSError(f"cache key: cannot read {path} to key it by its contents ({exc.strerror})") from None


def cache_key(*parts) -> str:
    """SHA-256 (hex) of :data:`FORMAT_VERSION` and the canonical encoding of ``parts``."""
    h = hashlib.sha256(FORMAT_VERSION.encode())
    _encode(parts, h)
    return h.hexdigest()


def _content_digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    _encode({k: np.asarray(v) for k, v in arrays.items()}, h)
    return h.hexdigest()


class _BadEntry(Exception):
    """Why an entry was refused (internal)."""


class EntryCache:
    """The entries of one cache folder (see the module docstring for key and format).

    Parameters
    ----------
    folder : Path
        Where the entries live; created on the first save.
    suffix : str
        File name ending of the entries (``".npz"``, ``".ranges.npz"``, ...).
    """

    def __init__(self, folder: str | Path, suffix: str = ".npz"):
        self.folder = Path(folder)
        self.suffix = suffix

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{self.suffix}"

    def load(self, key: str, names=None) -> dict[str, np.ndarray] | None:
        """The arrays ``names`` (default: all stored) of entry ``key``, or None (absent, or
        refused and deleted)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return self._read(path, key, None if names is None else tuple(names))
        except _BadEntry as exc:
            self._discard(path, str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure to parse is a damaged entry
            self._discard(path, f"unreadable ({type(exc).__name__}: {exc})")
        return None

    def _read(self, path: Path, key: str, names: tuple) -> dict[str, np.ndarray]:
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise _BadEntry(f"not an .npz archive (starts with {magic!r})")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # pragma: no cover - the magic check comes first
            raise _BadEntry("not an .npz archive")
        with data:
            members = set(data.files)
            if _HEADER not in members:
                raise _BadEntry("no cimphys cache header (not written by this cache)")
            header = json.loads(bytes(data[_HEADER]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
                raise _BadEntry(f"format {header.get('format') if isinstance(header, dict) else header!r}, "
                                f"expected {FORMAT_VERSION!r}")
            if header.get("key") != key:
                raise _BadEntry("written for another key")
            if names is None:
                names = tuple(sorted(members - {_HEADER}))
            if members - {_HEADER} != set(names):
                raise _BadEntry(f"holds {sorted(members - {_HEADER})}, expected {sorted(names)}")
            arrays = {name: data[name] for name in names}
        if any(a.dtype.hasobject for a in arrays.values()):
            raise _BadEntry("holds object arrays")
        if _content_digest(arrays) != header.get("sha256"):
            raise _BadEntry("content does not match its SHA-256 (damaged or edited)")
        return arrays

    def _discard(self, path: Path, why: str) -> None:
        try:
            path.unlink()
            action = "deleted; recomputing"
        except OSError:
            action = "ignored (cannot delete it); recomputing"
        warnings.warn(f"cache entry {path}: {why}; {action}", CacheWarning, stacklevel=3)

    def save(self, key: str, arrays: Mapping[str, np.ndarray]) -> Path | None:
        """Write entry ``key`` atomically; None (after one warning per folder) if it cannot be."""
        arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
        if _HEADER in arrays:
            raise ValueError(f"cache entry: {_HEADER!r} is reserved")
        header = {"format": FORMAT_VERSION, "key": key, "sha256": _content_digest(arrays)}
        raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        path = self.path(key)
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=_PART, dir=self.folder)
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays, **{_HEADER: raw})
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._remove_stale_parts(key)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            self._report_unwritable(exc)
            return None
        return path

    def _remove_stale_parts(self, key: str) -> None:
        """Delete temporaries of this key that a killed writer left (older than
        :data:`STALE_PART_SECONDS`, so a live writer's file is never touched)."""
        now = time.time()
        for part in self.folder.glob(f".{key}.*{_PART}"):
            with contextlib.suppress(OSError):
                if now - part.stat().st_mtime > STALE_PART_SECONDS:
                    part.unlink()

    def _report_unwritable(self, exc: OSError) -> None:
        folder = str(self.folder)
        if folder not in _unwritable_reported:
            _unwritable_reported.add(folder)
            warnings.warn(f"cache folder {folder} cannot be written ({exc.strerror or exc}); "
                          "running without the cache", CacheWarning, stacklevel=3)
