"""`cimphys generate` and `cimphys run --model` on a tiny random Llama GGUF (the real SmolLM2
runs take minutes: see benchmarks/bench_llama.py)."""

from __future__ import annotations

import pytest
import xarray as xr

from cimphys.cli import main
from cimphys.layers.tiny_llama import tiny_llama_config, tiny_llama_tensors, write_tiny_llama_gguf

pytest.importorskip("gguf", reason="pip install gguf (the 'llm' extra of cimphys)")


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    """32x32 tiles without wire resistance instead of the default card: no tile solves (the
    plumbing is under test here; the tile physics in tests/unit/layers)."""
    import cimphys.commands.run as run_command

    real = run_command.run_config
    monkeypatch.setattr(run_command, "run_config", lambda args: real(args).with_(rows=32, cols=32, r_wire=0.0))


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    cfg = tiny_llama_config(positions=4096)
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("g") / "tiny.gguf", cfg, tiny_llama_tensors(cfg, seed=4),
                                 qtype="Q4_1")


@pytest.mark.parametrize("extra", [["--q4-codes"], ["--kv-cim"], ["--q4-codes", "--kv-cim"]])
def test_generate_writes_per_token_report(tiny_gguf, tmp_path, capsys, extra):
    out = tmp_path / "gen"
    rc = main(["generate", "abc", "--raw", "--model", str(tiny_gguf), "--tokens", "4", "--out", str(out),
               "--no-cache", *extra])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "token agreement" in text and "energy/generated token" in text
    ds = xr.open_dataset(out / "generate.nc")
    assert ds.sizes["token"] == 3 and float(ds.energy.sum()) > 0 and ds.energy.attrs["units"] == "J"
    if "--kv-cim" in extra:
        assert ds.attrs["max_writes_per_cell"] == 1 and float(ds.cell_writes.min()) > 0
        assert ds.attrs["kv_cells_past_endurance"] == 0 and "cells past it" in text


def test_generate_without_chat_template_is_one_clear_error(tiny_gguf, tmp_path, capsys):
    rc = main(["generate", "abc", "--model", str(tiny_gguf), "--fp32-only", "--out", str(tmp_path)])
    assert rc == 1 and "not ChatML" in capsys.readouterr().err


def test_run_decoder_reports_perplexity(tiny_gguf, tmp_path, capsys):
    rc = main(["run", "--model", str(tiny_gguf), "--tokens", "24", "--no-cache", "--no-plots", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert rc == 0, text
    ds = xr.open_dataset(tmp_path / "report.nc")
    assert float(ds.perplexity_cim) > 0 and ds.sizes["state"] == 3 and float(ds.energy_per_token.sum()) > 0
    assert "perplexity fp32" in text
