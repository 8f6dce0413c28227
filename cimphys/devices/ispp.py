"""Pulse amplitudes of write-verify: fixed pulses, or incremental-step pulse programming (ISPP).

:func:`ispp_options` validates the ramp (``v_step``, ``v_max``); :func:`pulse_amplitudes` gives
each cell's amplitude for the next pulse of :func:`cimphys.devices.programming.write_verify_dynamic`.
A cell's ``k``-th consecutive pulse of one polarity has amplitude ``sign (|v_start| + k v_step)``,
capped at ``v_max`` in magnitude, and the count restarts when a verify read asks for the other
polarity (overshoot): the incremental-step pulse with verify algorithm of multilevel RRAM
(E. Perez et al., Electronics 10, 1084 (2021), doi:10.3390/electronics10091084), the bipolar
form of the flash ISPP of K.-D. Suh et al., IEEE J. Solid-State Circuits 30, 1149 (1995),
doi:10.1109/4.475701.  Amplitudes in V.
"""

from __future__ import annotations

import numpy as np

from ..checks import as_array
from ..errors import InputError

__all__ = ["ispp_options", "pulse_amplitudes"]


def ispp_options(amps: np.ndarray, v_step, v_max):
    """Validated ISPP (SET, RESET) steps and amplitude caps (V), or ``(None, None)`` for fixed
    pulses; ``amps`` are the start amplitudes ``(v_set, v_reset)`` (V)."""
    steps = as_array("v_step", v_step, unit="V", low=0.0, ndim=(0, 1)).reshape(-1)
    if steps.size not in (1, 2):
        raise InputError(f"v_step: expected 1 or 2 values (SET, RESET), got {steps.size}")
    steps = np.broadcast_to(steps, (2,)).astype(float)
    if not steps.any():
        if v_max is not None:
            raise InputError(f"v_max: only used with v_step > 0 (incremental-step programming), got v_max={v_max!r}")
        return None, None
    if v_max is None:
        raise InputError("v_max: required with v_step > 0 (the largest amplitude incremental-step programming "
                         "may apply), got None")
    caps = as_array("v_max", v_max, unit="V", low=0.0, low_open=True, ndim=(0, 1)).reshape(-1)
    if caps.size not in (1, 2):
        raise InputError(f"v_max: expected 1 or 2 values (SET, RESET), got {caps.size}")
    caps = np.broadcast_to(caps, (2,)).astype(float)
    if np.any(caps < np.abs(amps)):
        raise InputError(f"v_max: expected magnitudes >= the start amplitudes |v_set|, |v_reset| = "
                         f"{abs(amps[0]):g}, {abs(amps[1]):g} V, got {caps.tolist()}")
    return tuple(float(v) for v in steps), tuple(float(v) for v in caps)


def pulse_amplitudes(active: np.ndarray, up: np.ndarray, amps: np.ndarray, steps, caps, run: np.ndarray,
                     last_up: np.ndarray):
    """Each cell's next pulse amplitude (V; 0 where not ``active``) and the updated ISPP counters.

    ``up`` says which cells need a SET pulse (``amps[0]``) rather than a RESET pulse
    (``amps[1]``); with ``steps`` None the pulses are fixed.  ``run`` counts each cell's
    consecutive pulses of the polarity it had last (``last_up``).  Returns ``(scale, run,
    last_up)``.
    """
    if steps is None:
        return np.where(active, np.where(up, amps[0], amps[1]), 0.0), run, last_up
    run = np.where(up == last_up, run, 0.0)  # overshoot: restart from the start amplitude
    mag = np.where(up, np.minimum(abs(amps[0]) + run * steps[0], caps[0]),
                   np.minimum(abs(amps[1]) + run * steps[1], caps[1]))
    scale = np.where(active, np.where(up, np.sign(amps[0]), np.sign(amps[1])) * mag, 0.0)
    return scale, np.where(active, run + 1.0, run), np.where(active, up, last_up)
