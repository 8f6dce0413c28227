"""Hand-offs to other simulators: a tile's error model, and the vocabulary each tool reads.

* :mod:`cimphys.exports.error_model` -- the tile physics tabulated against ADC resolution, input
  and weight magnitude (NetCDF look-up table).
* :mod:`cimphys.exports.crosssim` -- a JSON that Sandia CrossSim's ``CrossSimParameters.from_json``
  loads, plus a side file with what CrossSim has no field for.
* :mod:`cimphys.exports.aihwkit` -- IBM aihwkit's inference configuration, and its
  ``InferenceRPUConfig`` built from the exported JSON.
* :mod:`cimphys.exports.emulate` -- a statistical tile rebuilt from an export alone.
"""
