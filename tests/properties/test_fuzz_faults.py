"""Fuzz and fault suite (issue 18): arbitrary inputs get one clear error, damage is never used.

Bounded so that the whole file runs in well under a minute: every ``@settings`` caps
``max_examples`` and sets a ``deadline``.  Properties:

- an arbitrary campaign TOML either loads to a campaign naming a registered model or fails with
  one :class:`InputError`; nothing is imported or run while loading it;
- a cache entry damaged anywhere (bytes flipped, cut, appended) or replaced by arbitrary bytes is
  never returned: the read gives the stored arrays exactly, or None with a CacheWarning;
- an arbitrary ``config.json`` or weights file in a model folder gives the model or one
  :class:`InputError`, never another exception;
- the tile cache key changes when any configuration field or device card value changes;
- a process killed while writing results leaves the old file or the new one, never a mix;
- `cimphys crossbar` on a damaged or arbitrary .npz runs or prints one InputError line.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cimphys.cache import EntryCache, cache_key
from cimphys.campaign import MODELS, load_campaign
from cimphys.errors import CacheWarning, InputError

FAST = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- campaign files --------------------------------------------------------------------------
names = st.sampled_from(["campaign", "model", "card", "axes", "metrics", "store", "name", "function",
                         "parameters", "seed", "description", "path", "names", "device", "circuit",
                         "rows", "cols", "r_wire", "adc_bits", "command", "start", "stop", "num", "scale",
                         "values", "x"])
functions = st.sampled_from(["os:system", "subprocess:run", "builtins:exec", "builtins:eval", "shutil:rmtree",
                             "cimphys.campaign:crossbar_adc", "crossbar_adc", "pcm_tile_error", "os.system",
                             "__import__", "", "crossbar_adc:x"])
scalars = st.one_of(st.integers(-5, 40), st.floats(allow_nan=False, width=32), st.booleans(),
                    st.text(max_size=12), functions)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(names, inner, max_size=4)), max_leaves=12)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if np.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


def _document(tables: dict) -> str:
    lines = []
    for title, body in tables.items():
        lines.append(f"[{title}]")
        lines += [f"{key} = {_toml(v)}" for key, v in body.items()]
    return "\n".join(lines) + "\n"


campaigns = st.fixed_dictionaries(
    {"campaign": st.dictionaries(names, values, max_size=3).map(lambda d: {"name": "fuzz", **d}),
     "model": st.dictionaries(names, values, max_size=3).flatmap(
         lambda d: functions.map(lambda f: {**d, "function": f})),
     "axes": st.dictionaries(names, values, min_size=1, max_size=3)},
    optional={"card": st.dictionaries(names, values, max_size=2), "metrics": st.dictionaries(names, values, max_size=2),
              "store": st.dictionaries(names, values, max_size=2), "extra": st.dictionaries(names, values, max_size=2)},
)


@FAST
@given(tables=campaigns)
def test_arbitrary_campaign_file_runs_no_code(tmp_path, monkeypatch, tables):
    """Loading never imports a module and ends in a Campaign of a registered model or one
    InputError (naming the file)."""
    def no_import(name, *args, **kwargs):
        raise AssertionError(f"a campaign file made cimphys import {name!r}")

    monkeypatch.setattr(importlib, "import_module", no_import)
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "fuzz.toml"
    path.write_text(_document(tables))
    try:
        camp = load_campaign(path)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert camp.function in MODELS


@settings(max_examples=80, deadline=2000)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_campaign_file(raw):
    """Any bytes: a Campaign or one InputError, never another exception."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_bytes(raw)
        try:
            load_campaign(path)
        except InputError:
            pass


# -- cache entries ---------------------------------------------------------------------------
STORED = {"sensed": np.linspace(-1.0, 1.0, 24).reshape(2, 3, 4), "row_g": np.arange(3.0)}


def _load_quietly(cache, key):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cache.load(key, ("sensed", "row_g"))
    return got, [w for w in caught if issubclass(w.category, CacheWarning)]


edits = st.lists(st.tuples(st.sampled_from(["flip", "cut", "append", "zero"]), st.integers(0, 10**6),
                           st.integers(1, 255)), min_size=1, max_size=3)


def damaged(data: bytes, edits) -> bytes:
    """``data`` after ``edits``: (op, where, value) flips, cuts, zeroed runs or appended bytes."""
    raw = bytearray(data)
    for op, where, value in edits:
        i = where % max(len(raw), 1)
        if op == "flip" and raw:
            raw[i] ^= value
        elif op == "cut":
            del raw[i:]
        elif op == "zero" and raw:
            raw[i:i + value] = bytes(len(raw[i:i + value]))
        else:
            raw += bytes([value]) * (where % 64 + 1)
    return bytes(raw)


@FAST
@given(edits=edits)
def test_damaged_entry_is_never_used(tmp_path, edits):
    """Flip, cut, zero or append bytes anywhere in an entry: the read returns exactly what was
    stored (the edit missed every checked byte, e.g. the zip's padding) or None with a warning
    naming the file -- never other numbers."""
    cache = EntryCache(tempfile.mkdtemp(dir=tmp_path))
    key = cache_key("fuzz")
    path = cache.save(key, STORED)
    raw = damaged(path.read_bytes(), edits)
    assume(bytes(raw) != path.read_bytes())
    path.write_bytes(bytes(raw))
    got, warned = _load_quietly(cache, key)
    if got is None:
        assert warned and path.name in str(warned[0].message) and not path.exists()
    else:
        assert not warned
        for name, value in STORED.items():
            np.testing.assert_array_equal(got[name], value)


@FAST
@given(raw=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
                     st.binary(max_size=300).map(lambda b: b"\x93NUMPY" + b)))
def test_arbitrary_bytes_as_entry(tmp_path, raw):
    cache = EntryCache(tempfile.mkdtemp(dir=tmp_path))
    cache.path("k").write_bytes(raw)
    got, warned = _load_quietly(cache, "k")
    assert got is None and warned


# -- model folders ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from cimphys.layers.tiny import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("fuzz_bert"), seed=3)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 10**10), st.floats(allow_nan=False),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
config_keys = st.sampled_from(["model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                               "num_attention_heads", "vocab_size", "max_position_embeddings", "type_vocab_size"])


@FAST
@given(changes=st.dictionaries(config_keys, json_values, max_size=3), whole=st.none() | json_values)
@example(changes={"type_vocab_size": None}, whole=None)  # found by this test: int(None) raised TypeError
def test_arbitrary_config_json(tiny_folder, tmp_path, changes, whole):
    """Any config.json (edited keys, or any JSON document): the model or one InputError."""
    import shutil

    from cimphys.layers import load_model

    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "m"
    shutil.copytree(tiny_folder, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(whole if whole is not None else {**cfg, **changes}))
    try:
        load_model(folder)
    except InputError as exc:
        assert "config.json" in str(exc) or "model.safetensors" in str(exc)


@settings(max_examples=40, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10**6), flip=st.integers(0, 10**6))
def test_damaged_weights_file(tiny_folder, tmp_path, cut, flip):
    """A cut or bit-flipped model.safetensors: the model (a flip in tensor data changes only
    values, which are checked finite) or one InputError naming the file."""
    import shutil

    from cimphys.layers import load_model

    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "m"
    shutil.copytree(tiny_folder, folder)
    path = folder / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[flip % len(raw)] ^= 0x40
    path.write_bytes(bytes(raw[: max(1, cut % (len(raw) + 1))]))
    try:
        load_model(folder)
    except InputError as exc:
        assert "model.safetensors" in str(exc) or "config.json" in str(exc)


# -- cache keys ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=2000)
@given(data=st.data())
def test_tile_key_misses_when_any_config_field_changes(data):
    """Draw a layer-level field of CimConfig or a number of its tile card, and a new valid value:
    the key must change."""
    import dataclasses

    from cimphys.layers.characterise import cache_key as tile_key
    from cimphys.layers.config import CimConfig

    base = CimConfig()
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    numbers = [(t, k) for t, table in [("parameters", base.card.parameters), *base.card.sections.items()]
               for k, v in table.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    fields = [f.name for f in dataclasses.fields(CimConfig) if f.name != "card"]
    pick = data.draw(st.sampled_from(fields + [f"{t}.{k}" for t, k in numbers]))
    if "." in pick:
        table, name = pick.split(".")
        value = (base.card.parameters if table == "parameters" else base.card.sections[table])[name]
    else:
        table, name, value = None, pick, getattr(base, pick)
    if isinstance(value, bool):
        new = not value
    elif isinstance(value, int):
        new = value + data.draw(st.integers(1, 3))
    elif isinstance(value, float):
        factor = data.draw(st.floats(1.001, 4.0))
        new = value * factor if value else factor * 1e-9
    else:
        new = "p99.9" if name == "adc_calibration" else ("ideal" if value != "ideal" else "device")
    try:
        if table is None:
            cfg = dataclasses.replace(base, **{name: new})
        elif table == "parameters":
            cfg = base.with_card(base.card.with_parameters(**{name: new}))
        else:
            cfg = base.with_card(base.card.with_section(table, **{name: new}))
    except ValueError:
        assume(False)
    assert tile_key(w, cfg, 0) != tile_key(w, base, 0), pick


# -- killed writers --------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    import numpy as np, xarray as xr
    import cimphys
    path = sys.argv[1]
    i = 0
    print("ready", flush=True)
    while True:
        v = np.full(200_000, float(i))
        cimphys.save(xr.Dataset({"v": (("k",), v, {"units": "V", "long_name": "value"})}), path)
        i += 1
""")


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=st.floats(0.05, 0.8))
def test_result_writer_killed_leaves_a_whole_file(tmp_path, delay):
    """SIGKILL a process rewriting a result in a loop at a random moment: the file opens and
    holds one write's values throughout (uniform), whatever the moment."""
    import cimphys

    path = tmp_path / f"r{int(delay * 1e6)}.nc"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    v = cimphys.open(path).v.values
    assert v.size == 200_000 and (v == v[0]).all()


# -- the crossbar command's .npz input ------------------------------------------------------
@settings(max_examples=15, deadline=10000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits, body=st.one_of(st.none(), st.binary(max_size=200)))
def test_crossbar_command_on_arbitrary_npz(tmp_path, capsys, edits, body):
    """``cimphys crossbar FILE.npz`` on a damaged archive or arbitrary bytes: it runs, or exits 1
    with one InputError line naming the file -- never a raw BadZipFile/EOFError/ValueError."""
    from cimphys.cli import main

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / "in.npz"
    if body is None:
        np.savez(path, G=np.full((3, 2), 1e-5), v_in=np.full(3, 0.2))
        path.write_bytes(damaged(path.read_bytes(), edits))
    else:
        path.write_bytes(body)
    capsys.readouterr()
    code = main(["crossbar", str(path), "-o", str(folder / "out")])
    err = capsys.readouterr().err
    if code != 0:
        assert code == 1 and err.count("\n") == 1, err
        assert "InputError" in err and (str(path) in err or "G" in err or "v_in" in err), err
