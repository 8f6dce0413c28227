"""Hand-offs to other simulators: a tile's statistics (computed by :mod:`cimphys.export`) written in
the vocabulary each tool reads.

* :mod:`cimphys.exports.crosssim` -- a JSON that Sandia CrossSim's ``CrossSimParameters.from_json``
  loads, plus a side file with what CrossSim has no field for.
* :mod:`cimphys.exports.aihwkit` -- IBM aihwkit's ``InferenceRPUConfig`` built from the exported JSON.
"""
