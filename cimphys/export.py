"""The tile's error model exported for other simulators: the public names in one place.

The export is in pieces by concept, under :mod:`cimphys.exports`:

* :mod:`cimphys.exports.error_model` -- the physics tabulated: :func:`error_model`,
  :func:`physics_errors`, :func:`write_lut` (NetCDF);
* :mod:`cimphys.exports.aihwkit` -- IBM aihwkit's vocabulary: :func:`aihwkit_config`,
  :func:`write_aihwkit`;
* :mod:`cimphys.exports.crosssim` -- Sandia CrossSim's vocabulary: :func:`crosssim_config`,
  :func:`write_crosssim`;
* :mod:`cimphys.exports.emulate` -- a statistical tile rebuilt from an export alone:
  :func:`emulate_errors`.

The device statistics they draw on (programming noise, write-verify, the ISPP pulse search) are
the device layer's, :mod:`cimphys.devices.programming_statistics`.
"""

from __future__ import annotations

from .devices.programming_statistics import ISPP_MAX, ISPP_STEP, ISPP_V_LIMIT
from .exports.aihwkit import aihwkit_config, write_aihwkit
from .exports.crosssim import crosssim_config, write_crosssim
from .exports.emulate import emulate_errors
from .exports.error_model import error_model, pcm_card_name, physics_errors, write_lut

__all__ = ["ISPP_MAX", "ISPP_STEP", "ISPP_V_LIMIT", "aihwkit_config", "crosssim_config", "emulate_errors",
           "error_model", "pcm_card_name", "physics_errors", "write_aihwkit", "write_crosssim", "write_lut"]
