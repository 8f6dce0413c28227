"""Campaign validation/peer_crossbar.py: the crossbar solver against badcrossbar and CrossSim.

Needs both peers: ``pip install --no-deps badcrossbar sigfig pathvalidate`` and
``pip install /work/shared/peers/crosssim-3.2.0-py3-none-any.whl``; skips without them.
"""

from __future__ import annotations

import warnings

import pytest

from conftest import load_module

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # badcrossbar warns that its plotting needs cairo
    try:
        import badcrossbar  # noqa: F401
    except ImportError:
        pytest.skip("badcrossbar not installed: pip install --no-deps badcrossbar sigfig pathvalidate",
                    allow_module_level=True)
pytest.importorskip("simulator", reason="pip install /work/shared/peers/crosssim-3.2.0-py3-none-any.whl")


def test_peer_campaign_quick(tmp_path):
    campaign = load_module("validation/peer_crossbar.py")
    result = campaign.run(tmp_path, quick=True)
    assert result["campaign"] == "peer_crossbar" and len(result["checks"]) == 4
    for check in result["checks"]:
        assert check["value"] <= check["tolerance"], check
    # badcrossbar solves the same equations directly: agreement to rounding, not to a tolerance
    assert max(c["value"] for c in result["checks"] if c["name"].startswith("badcrossbar")) < 1e-11
    assert result["passed"]
