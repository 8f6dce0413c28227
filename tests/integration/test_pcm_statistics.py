"""The PCM statistics campaign: Monte Carlo of the model against the published IBM fits."""

from __future__ import annotations

import pytest

from cimphys.results import open as open_result
from conftest import load_module


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    campaign = load_module("validation/pcm_statistics.py")
    return campaign.run(tmp_path_factory.mktemp("pcm"), quick=True)


def test_contract(result):
    assert result["campaign"] == "pcm_statistics"
    assert result["checks"] and result["files"]
    assert result["passed"] == all(c["passed"] for c in result["checks"])


def test_every_check_within_tolerance(result):
    failed = [c for c in result["checks"] if not c["passed"]]
    assert not failed, failed
    names = " ".join(c["name"] for c in result["checks"])
    for kind in ("std(G_P - G_T)", "mean nu", "read-noise std", "compensated mean"):
        assert kind in names


def test_drift_is_large_without_compensation(result):
    # a day of drift with nu ~ 0.05-0.1 loses > 20 % of the conductance: compensation matters
    assert result["uncompensated_mean_change"] < -0.2


def test_curves_file_is_labelled(result):
    ds = open_result(result["files"][0])
    assert "sigma_prog_measured" in ds and ds["sigma_prog_measured"].attrs["units"] == "S"
