"""Waveforms built directly are checked like those the builders make (issue 18.10)."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.devices.dynamics import integrate, model_from_card
from cimphys.devices.waveforms import Waveform, pulse_train, pwl, sinusoid, triangle
from cimphys.errors import InputError

T = np.array([0.0, 1e-6])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("pwl", T[::-1], T, [0.0, 1.0]), {}, r"t: expected at least 2 strictly increasing"),
        (("pwl", T, T[::-1], [0.0, 1.0]), {}, r"knots_t: expected at least 2 strictly increasing"),
        (("pwl", T, T, [0.0, np.nan]), {}, r"knots_v: expected finite values"),
        (("pwl", T, T, [0.0]), {}, r"knots_v: expected shape \(2,\)"),
        (("pwl", [0.0, 2e-6], T, [0.0, 1.0]), {}, r"t: expected times within the knots' span"),
        (("square", T, T, [0.0, 1.0]), {}, r"kind: expected one of \('pwl', 'sine'\), got 'square'"),
        (("sine", T, [], []), {"amplitude": 1.0, "frequency": 0.0}, r"frequency: expected values in \(0"),
        (("sine", T, [], []), {"amplitude": np.inf, "frequency": 1.0}, r"amplitude: expected finite"),
        (("sine", T, T, [0.0, 1.0]), {"amplitude": 1.0, "frequency": 1.0}, r"a sinusoid has no knots"),
    ],
)
def test_direct_waveform_is_checked(args, kwargs, match):
    """Regression: decreasing times, NaN and kind="square" built a Waveform that integrate ran
    for 0 steps, returning the initial state unchanged (checked failing before: no error)."""
    with pytest.raises(InputError, match=match):
        Waveform(*args, **kwargs)


def test_builders_still_make_valid_waveforms():
    for w in (pwl([0, 1e-6], [0, 1]), sinusoid(1.0, 1e3), triangle(-1.0, 1.0, 1.0), pulse_train(1.0, 1e-6, 3)):
        assert Waveform(w.kind, w.t, w.knots_t, w.knots_v, w.amplitude, w.frequency, w.phase, w.offset).duration > 0
        assert not w.t.flags.writeable


def test_integrate_refuses_no_cells():
    """Regression: integrate(state0=[]) ended in numpy's 'zero-size array to reduction' error."""
    model = model_from_card(load_device("kvatinsky2015_vteam_pickett"))
    with pytest.raises(InputError, match=r"state0: expected the initial state of at least one cell"):
        integrate(model, pwl([0, 1e-6], [0, 0.3]), [])
