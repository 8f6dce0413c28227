"""cimphys.cache: keys over every input, entries checked on read, atomic writes, no stale use."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest

from cimphys.cache import FORMAT_VERSION, EntryCache, cache_key, canonical
from cimphys.errors import CacheWarning

ARRAYS = {"sensed": np.linspace(-1e-5, 1e-5, 12).reshape(3, 4), "row_g": np.arange(3.0) * 1e-5}


@pytest.fixture
def entry(tmp_path):
    cache = EntryCache(tmp_path)
    key = cache_key("test", 1)
    path = cache.save(key, ARRAYS)
    assert path == cache.path(key) and path.is_file()
    return cache, key, path


def test_round_trip_is_bit_exact_and_leaves_no_temporary(entry):
    cache, key, path = entry
    got = cache.load(key, ("sensed", "row_g"))
    for name, value in ARRAYS.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_missing_entry_is_a_quiet_miss(tmp_path):
    assert EntryCache(tmp_path).load(cache_key("absent"), ("a",)) is None


# -- keys ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Config:
    r_wl: float = 1.0
    rows: int = 128
    name: str = "x"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.zeros(4), np.zeros(4, dtype=np.float32)),          # dtype
        (np.zeros(4), np.zeros((2, 2))),                       # shape
        (np.zeros(4), np.array([0.0, 0, 0, 1e-300])),          # bytes
        (0.1, 0.1 + 1e-17),                                    # exact floats (repr would round)
        (1, 1.0),                                              # int is not float
        (True, 1),                                             # bool is not int
        ("1", 1),
        (None, 0),
        ([1, 2], (1, 2)),
        ([1, [2]], [[1], 2]),                                  # nesting is encoded
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}),
        (_Config(), _Config(r_wl=1.0 + 2**-52)),
        (_Config(), _Config(rows=129)),
        (_Config(), _Config(name="y")),
        (("ab", "c"), ("a", "bc")),                            # length-prefixed, no concatenation clash
    ],
)
def test_keys_differ_when_any_input_differs(a, b):
    assert cache_key(a) != cache_key(b)


def test_keys_are_canonical():
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
    assert cache_key(np.arange(6.0).reshape(2, 3).T) == cache_key(np.ascontiguousarray(np.arange(6.0).reshape(2, 3).T))
    assert cache_key(_Config()) == cache_key(_Config())
    assert canonical(0.5).endswith(float(0.5).hex().encode())


def test_files_are_keyed_by_content(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text("x = 1\n")
    two.write_text("x = 1\n")
    assert cache_key(one) == cache_key(two)
    two.write_text("x = 2\n")
    assert cache_key(one) != cache_key(two)
    with pytest.raises(OSError, match="cannot read"):
        cache_key(tmp_path / "missing.toml")


@pytest.mark.parametrize("value", [object(), np.array([object()]), {1, 2}, lambda: 0])
def test_unkeyable_inputs_are_refused_not_reprd(value):
    with pytest.raises(TypeError, match="cache key"):
        cache_key(value)


# -- damaged and doctored entries ------------------------------------------------------------
def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path):
    path.write_bytes(b"")


def _flip_bit(path):
    raw = bytearray(path.read_bytes())
    start = raw.index(b"\x93NUMPY")  # inside the first member's data, past its header
    raw[start + 200] ^= 0x04
    path.write_bytes(bytes(raw))


def _npy_renamed(path):
    with path.open("wb") as handle:
        np.save(handle, ARRAYS["sensed"])


def _text(path):
    path.write_text("sensed = 1, 2, 3\n")


def _pickle(path):
    np.savez(path.with_suffix(".tmp.npz"), sensed=np.array([{"a": 1}], dtype=object), row_g=ARRAYS["row_g"])
    path.with_suffix(".tmp.npz").replace(path)


def _rewrite(path, **changes):
    """Rewrite the archive with some members replaced, keeping the original header."""
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    members.update(changes)
    with path.open("wb") as handle:
        np.savez(handle, **members)


def _negated(path):
    _rewrite(path, sensed=-ARRAYS["sensed"])


def _header(path, **fields):
    with np.load(path) as data:
        header = json.loads(bytes(data["__cimphys_cache__"]).decode())
    header.update(fields)
    _rewrite(path, __cimphys_cache__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))


def _old_format(path):
    _header(path, format="cimphys-cache-0")


def _no_header(path):
    with np.load(path) as data:
        members = {k: data[k] for k in data.files if k != "__cimphys_cache__"}
    with path.open("wb") as handle:
        np.savez(handle, **members)


def _extra_member(path):
    _rewrite(path, extra=np.zeros(2))


def _not_json_header(path):
    _rewrite(path, __cimphys_cache__=np.frombuffer(b"\xff\xfe{", dtype=np.uint8))


DAMAGE = {
    "truncated": (_truncate, "unreadable|not an .npz"),
    "empty": (_empty, "not an .npz archive"),
    "bit-flipped": (_flip_bit, "SHA-256|unreadable"),
    "npy renamed": (_npy_renamed, "not an .npz archive"),
    "text": (_text, "not an .npz archive"),
    "needs pickle": (_pickle, "no cimphys cache header|unreadable"),
    "values negated": (_negated, "does not match its SHA-256"),
    "old format": (_old_format, "format 'cimphys-cache-0'"),
    "no header": (_no_header, "no cimphys cache header"),
    "extra member": (_extra_member, "holds"),
    "header not json": (_not_json_header, "unreadable"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_named_deleted_and_missed(entry, damage):
    """Regression (issue 18.5): a truncated, empty or bit-flipped entry raised BadZipFile or
    EOFError without naming the file, and an entry with its values negated was used.  Each is
    now a miss with a warning naming the file, and the file is gone (checked failing before:
    the old load_cached raised or returned the negated values)."""
    cache, key, path = entry
    mutate, reason = DAMAGE[damage]
    mutate(path)
    with pytest.warns(CacheWarning, match=rf"{path.name}.*({reason})"):
        assert cache.load(key, ("sensed", "row_g")) is None
    assert not path.exists()
    assert cache.save(key, ARRAYS) == path  # recomputed and stored again
    assert cache.load(key, ("sensed", "row_g")) is not None


def test_entry_copied_under_another_key_is_refused(entry):
    cache, key, path = entry
    other = cache_key("test", 2)
    path.replace(cache.path(other))
    with pytest.warns(CacheWarning, match="written for another key"):
        assert cache.load(other, ("sensed", "row_g")) is None


def test_entry_with_other_names_is_refused(entry):
    cache, key, _ = entry
    with pytest.warns(CacheWarning, match="expected"):
        assert cache.load(key, ("sensed",)) is None


def test_reserved_member_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        EntryCache(tmp_path).save("k", {"__cimphys_cache__": np.zeros(1)})


def test_format_version_enters_every_key():
    assert FORMAT_VERSION in canonical(FORMAT_VERSION).decode()  # (the key hashes it first)
    assert cache_key() != cache_key(FORMAT_VERSION)


# -- unwritable folders and killed writers ----------------------------------------------------
def test_unwritable_folder_runs_without_cache_one_warning(tmp_path):
    """Regression (issue 18.10): an unwritable cache folder failed the run after its work; now
    saving returns None with one warning per folder, and loading misses quietly."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = EntryCache(blocker / "cache")
    with pytest.warns(CacheWarning, match=r"cannot be written.*running without the cache") as record:
        assert cache.save("k1", ARRAYS) is None
        assert cache.save("k2", ARRAYS) is None
    assert len([w for w in record if issubclass(w.category, CacheWarning)]) == 1
    assert cache.load("k1", ("sensed",)) is None


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from cimphys.cache import EntryCache
    cache = EntryCache(sys.argv[1])
    big = np.random.default_rng(0).standard_normal((512, 512))
    print("ready", flush=True)
    i = 0
    while True:
        cache.save("k%d" % (i % 3), {"a": big + i})
        i += 1
""")


@pytest.mark.slow
def test_killed_writer_leaves_only_whole_entries(tmp_path):
    """SIGKILL a process that rewrites entries in a loop: every entry it leaves loads without a
    warning (whole, hash-checked); at most its temporary ``.part`` file is left, which no
    reader opens."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(200):  # until the first entry exists (at most 10 s), then kill mid-loop
            if list(tmp_path.glob("k*.npz")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait()
    cache = EntryCache(tmp_path)
    entries = sorted(tmp_path.glob("k*.npz"))
    assert entries
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a half-written entry would warn
        for path in entries:
            got = cache.load(path.name[: -len(".npz")], ("a",))
            assert got is not None and got["a"].shape == (512, 512)
    assert all(p.name.endswith(".part") for p in tmp_path.iterdir() if p not in entries)


def test_zip_members_are_stored_uncompressed(entry):
    """Entries are plain ``np.savez`` archives: ``np.load`` and ``zipfile`` read them anywhere."""
    _, _, path = entry
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        assert "__cimphys_cache__.npy" in archive.namelist()


def test_stale_temporaries_of_a_key_are_removed(tmp_path):
    """A killed writer's ``.part`` file is deleted by the next save of its key once it is old;
    a fresh one (a live writer's) and other keys' are left alone."""
    cache = EntryCache(tmp_path)
    old, fresh, other = (tmp_path / n for n in (".k1.a.part", ".k1.b.part", ".k2.c.part"))
    for p in (old, fresh, other):
        p.write_bytes(b"half")
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    cache.save("k1", ARRAYS)
    assert not old.exists() and fresh.exists() and other.exists()
