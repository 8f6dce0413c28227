"""``integrate(..., labelled=False)``: the recorded states as a plain array, the same numbers
as the Dataset's (for callers that integrate in a loop, e.g. a write pulse's substeps)."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.cards import load_device
from cimphys.devices import StanfordPKU, integrate, pwl
from cimphys.errors import InputError


def test_plain_states_equal_the_datasets():
    model = StanfordPKU.from_card(load_device("guan2012_stanford_pku"))
    hold = pwl([0.0, 20e-9], [1.0, 1.0])
    x0, v = np.array([1.7e-9, 0.5e-9, 1.0e-9]), np.array([1.8, -1.4, 0.3])
    ds = integrate(model, hold, x0, v_scale=v, record="final", quantities=("state",))
    plain = integrate(model, hold, x0, v_scale=v, record="final", labelled=False)
    assert isinstance(plain, np.ndarray) and plain.shape == (1, 3)
    np.testing.assert_array_equal(plain, ds.state.values)
    assert plain[0, 0] < x0[0] and plain[0, 1] > x0[1] and plain[0, 2] == x0[2]  # SET, RESET, still
    with pytest.raises(InputError, match="labelled"):
        integrate(model, hold, x0, method="euler", labelled=False)
