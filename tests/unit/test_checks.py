"""The shared argument checks refuse what a cast would silently change."""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.checks import as_array, as_scalar
from cimphys.errors import InputError


@pytest.mark.parametrize("value", [1e-5 + 1e-6j, np.array([1.0, 2.0], dtype=complex), [0.1, 0.2j]])
def test_complex_values_are_refused_not_truncated(value):
    """Regression (issue 18.10): a complex conductance lost its imaginary part with only a
    NumPy ComplexWarning (checked failing before: the warning, not an error)."""
    with pytest.raises(InputError, match="G: expected real numbers in S, got complex"):
        as_array("G", value, unit="S")


def test_real_values_still_pass():
    np.testing.assert_array_equal(as_array("G", [1e-5, 2e-5], unit="S"), [1e-5, 2e-5])
    assert as_scalar("v", np.float32(0.5), unit="V") == 0.5
