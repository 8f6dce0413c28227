"""The cards ship inside the wheel and load by name from a plain (non-editable) install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="the test extra installs hatchling for an offline wheel build")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("cimphys-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_every_card(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("devices", "circuits"):
        for card in (ROOT / folder).glob("*.toml"):
            assert f"cimphys/_cards/{folder}/{card.name}" in names


@pytest.mark.slow
def test_installed_wheel_loads_cards_by_name(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import json, cimphys\n"
        "refs = cimphys.list_cards()\n"
        "cards = [cimphys.cards.load_card(r.name, r.kind) for r in refs]\n"
        "print(json.dumps({'file': cimphys.__file__, 'cards': [[r.kind, r.name, str(r.path)] for r in refs]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    report = json.loads(done.stdout)
    assert report["file"].startswith(str(target))
    expected = {("device", p.stem) for p in (ROOT / "devices").glob("*.toml")}
    expected |= {("circuit", p.stem) for p in (ROOT / "circuits").glob("*.toml")}
    assert len(expected) >= 2, "the repository ships device and circuit cards"
    assert {(k, n) for k, n, _ in report["cards"]} == expected
    assert all(path.startswith(str(target)) for _, _, path in report["cards"])
