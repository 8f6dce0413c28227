"""The ``cimphys`` command: help, version, cards, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cimphys
from cimphys.cli import COMMANDS, main
from tests.conftest import SINH_CARD

CARD = SINH_CARD


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for name, _, _ in COMMANDS:
        assert name in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"cimphys {cimphys.__version__}"


def test_cards_lists_shipped_cards(capsys):
    assert main(["cards"]) == 0
    out = capsys.readouterr().out
    for ref in cimphys.list_cards():
        assert ref.name in out


def test_cards_shows_one_with_provenance(tmp_path, capsys):
    path = tmp_path / "sel.toml"
    path.write_text(CARD)
    assert main(["cards", str(path), "--kind", "device"]) == 0
    out = capsys.readouterr().out
    assert "[provenance]" in out and "10.1109/LED.2012.2210856" in out and str(path) in out


def test_error_is_one_line_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(CARD.replace("k = 1e-6", "k = -1.0"))
    assert main(["cards", str(path), "--kind", "device"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bad.toml" in err and "[parameters] k = -1.0" in err


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(CARD.replace("k = 1e-6", "k = -1.0"))
    with pytest.raises(cimphys.CardError):
        main(["--debug", "cards", str(path), "--kind", "device"])


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "cimphys.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("cimphys ")
