"""Voltage waveforms for device transients: piecewise-linear (sweeps, pulses) and sinusoids.

A :class:`Waveform` is a frozen description that the integrator evaluates exactly: a
piecewise-linear one by its knots (the integrator never steps across a knot), a sinusoid by its
formula.  ``t`` holds the sample times at which results are reported; ``waveform(t)`` gives the
voltage at any times and ``waveform.samples()`` the ``(t, v)`` arrays.

Examples
--------
>>> w = triangle(-1.0, 1.0, frequency=1.0, points_per_cycle=8)
>>> w(0.25).item(), w(0.75).item()
(1.0, -1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import as_array, as_scalar
from ..errors import InputError

__all__ = ["KINDS", "Waveform", "pulse_train", "pwl", "sinusoid", "triangle"]

KINDS = ("pwl", "sine")


@dataclass(frozen=True, eq=False)
class Waveform:
    """A voltage waveform (V) over time (s).

    Attributes
    ----------
    kind : {"pwl", "sine"}
    t : ndarray
        Strictly increasing sample (report) times, s.
    knots_t, knots_v : ndarray
        Knots of a piecewise-linear waveform (s, V); empty for a sinusoid.
    amplitude, frequency, phase, offset : float
        ``v = offset + amplitude sin(2 pi frequency t + phase)`` for a sinusoid (V, Hz, rad, V).
    """

    kind: str
    t: np.ndarray
    knots_t: np.ndarray
    knots_v: np.ndarray
    amplitude: float = 0.0
    frequency: float = 0.0
    phase: float = 0.0
    offset: float = 0.0

    def __post_init__(self):
        """Checks a waveform built directly as thoroughly as the builders below do."""
        if self.kind not in KINDS:
            raise InputError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        set_ = object.__setattr__  # frozen dataclass: store the checked, read-only arrays
        set_(self, "t", _frozen(_increasing("t", self.t)))
        if self.kind == "pwl":
            knots_t = _increasing("knots_t", self.knots_t)
            knots_v = as_array("knots_v", self.knots_v, unit="V", shape=knots_t.shape)
            if self.t[0] < knots_t[0] or self.t[-1] > knots_t[-1]:
                raise InputError(f"t: expected times within the knots' span [{knots_t[0]:g}, {knots_t[-1]:g}] s, "
                                 f"got [{self.t[0]:g}, {self.t[-1]:g}] s")
            set_(self, "knots_t", _frozen(knots_t))
            set_(self, "knots_v", _frozen(knots_v))
        else:
            if np.size(self.knots_t) or np.size(self.knots_v):
                raise InputError("knots_t, knots_v: a sinusoid has no knots (give empty arrays)")
            set_(self, "knots_t", _frozen(np.empty(0)))
            set_(self, "knots_v", _frozen(np.empty(0)))
        checks = {"amplitude": ("V", {"low": 0.0}), "frequency": ("Hz", {"low": 0.0, "low_open": self.kind == "sine"}),
                  "phase": ("rad", {}), "offset": ("V", {})}
        for name, (unit, bounds) in checks.items():
            set_(self, name, as_scalar(name, getattr(self, name), unit=unit, **bounds))

    def __call__(self, t) -> np.ndarray:
        t = as_array("t", t, unit="s")
        if self.kind == "sine":
            return self.offset + self.amplitude * np.sin(2 * np.pi * self.frequency * t + self.phase)
        return np.interp(t, self.knots_t, self.knots_v)

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t, v)`` at the report times."""
        return self.t.copy(), self(self.t)

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0])

    def with_times(self, t) -> Waveform:
        """A copy reporting at times ``t`` (s, strictly increasing, inside the waveform's span)."""
        t = _increasing("t", t)
        if self.kind == "pwl" and (t[0] < self.knots_t[0] or t[-1] > self.knots_t[-1]):
            raise InputError(f"t: expected times within [{self.knots_t[0]:g}, {self.knots_t[-1]:g}] s")
        return Waveform(self.kind, t, self.knots_t, self.knots_v, self.amplitude, self.frequency,
                        self.phase, self.offset)

    def encoded(self) -> np.ndarray:
        """``[kind, amplitude, 2 pi frequency, phase, offset]`` for the integration kernel."""
        return np.array([0.0 if self.kind == "pwl" else 1.0, self.amplitude,
                         2 * np.pi * self.frequency, self.phase, self.offset])


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=np.float64)
    out.setflags(write=False)
    return out


def _increasing(name: str, t) -> np.ndarray:
    t = as_array(name, t, unit="s", ndim=1)
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise InputError(f"{name}: expected at least 2 strictly increasing times, got {t[:5]!r}...")
    return t


def pwl(t, v, *, samples=None) -> Waveform:
    """Piecewise-linear waveform through knots ``(t, v)`` (s, V); report at ``samples`` or knots."""
    t = _increasing("t", t)
    v = as_array("v", v, unit="V", shape=t.shape)
    out = t if samples is None else _increasing("samples", samples)
    if out[0] < t[0] or out[-1] > t[-1]:
        raise InputError(f"samples: expected times within [{t[0]:g}, {t[-1]:g}] s")
    return Waveform("pwl", out, t, v)


def sinusoid(amplitude, frequency, *, cycles=1.0, points_per_cycle=200, offset=0.0, phase=0.0) -> Waveform:
    """``v = offset + amplitude sin(2 pi f t + phase)`` for ``cycles`` periods, from t = 0."""
    amplitude = as_scalar("amplitude", amplitude, unit="V", low=0.0)
    frequency = as_scalar("frequency", frequency, unit="Hz", low=0.0, low_open=True)
    cycles = as_scalar("cycles", cycles, low=0.0, low_open=True, high=1e6)
    n = int(as_scalar("points_per_cycle", points_per_cycle, low=4, high=1e7))
    total = max(int(np.ceil(cycles * n)), 2)
    t = np.linspace(0.0, cycles / frequency, total + 1)
    return Waveform("sine", t, np.empty(0), np.empty(0), amplitude, frequency,
                    as_scalar("phase", phase, unit="rad"), as_scalar("offset", offset, unit="V"))


def triangle(v_min, v_max, frequency, *, cycles=1, points_per_cycle=200) -> Waveform:
    """DC sweep: 0 -> v_max -> v_min -> 0 each period (V, Hz), linear in time."""
    v_min = as_scalar("v_min", v_min, unit="V", high=0.0)
    v_max = as_scalar("v_max", v_max, unit="V", low=0.0)
    if v_max == v_min:
        raise InputError("v_max: expected > v_min")
    f = as_scalar("frequency", frequency, unit="Hz", low=0.0, low_open=True)
    cycles = int(as_scalar("cycles", cycles, low=1, high=1e6))
    n = int(as_scalar("points_per_cycle", points_per_cycle, low=4, high=1e7))
    span = v_max - v_min
    t_up = v_max / span / 2  # fraction of the period spent on each leg, proportional to swing
    one_t = np.array([0.0, t_up, t_up + 0.5, 1.0])
    one_v = np.array([0.0, v_max, v_min, 0.0])
    kt = np.concatenate([one_t[:-1] + c for c in range(cycles)] + [[cycles]]) / f
    kv = np.concatenate([one_v[:-1]] * cycles + [[0.0]])
    keep = np.concatenate([[True], np.diff(kt) > 0])
    kt, kv = kt[keep], kv[keep]
    samples = np.union1d(np.linspace(0.0, cycles / f, cycles * n + 1), kt)
    return Waveform("pwl", samples, kt, kv)


def pulse_train(amplitude, width, count=1, *, period=None, rise=None, fall=None, delay=None,
                points_per_pulse=0) -> Waveform:
    """Rectangular pulses with linear edges, starting at 0 V.

    Parameters
    ----------
    amplitude : float or array_like, V
        Pulse height, one value or one per pulse (``count`` values).
    width : float, s
        Time at full amplitude.
    count : int
        Number of pulses.
    period : float, s
        Pulse period (default ``2 * (width + rise + fall)``).
    rise, fall : float, s
        Edge durations (default ``width / 20`` each); must be > 0.
    delay : float, s
        Time at 0 V before the first pulse (default ``rise``).
    points_per_pulse : int
        Extra evenly spaced report times per period (0: report at the knots only).

    The report times always include the end of every period, so ``record="all"`` gives the
    state after each pulse.
    """
    count = int(as_scalar("count", count, low=1, high=1e7))
    amp = as_array("amplitude", amplitude, unit="V", ndim=(0, 1))
    if amp.ndim and amp.size != count:
        raise InputError(f"amplitude: expected one value or {count} values, got {amp.size}")
    amp = np.broadcast_to(amp, (count,))
    width = as_scalar("width", width, unit="s", low=0.0, low_open=True)
    rise = width / 20 if rise is None else as_scalar("rise", rise, unit="s", low=0.0, low_open=True)
    fall = width / 20 if fall is None else as_scalar("fall", fall, unit="s", low=0.0, low_open=True)
    busy = rise + width + fall
    period = 2 * busy if period is None else as_scalar("period", period, unit="s", low=busy, low_open=True)
    delay = rise if delay is None else as_scalar("delay", delay, unit="s", low=0.0, low_open=True)
    starts = delay + period * np.arange(count)
    kt = np.stack([starts, starts + rise, starts + rise + width, starts + busy], axis=1).reshape(-1)
    kv = np.stack([np.zeros(count), amp, amp, np.zeros(count)], axis=1).reshape(-1)
    end = delay + period * count
    kt = np.concatenate([[0.0], kt, [end]])
    kv = np.concatenate([[0.0], kv, [0.0]])
    report = np.concatenate([[0.0], delay + period * np.arange(1, count + 1), kt])
    n = int(as_scalar("points_per_pulse", points_per_pulse, low=0, high=1e6))
    if n:
        report = np.concatenate([report, np.linspace(0.0, end, count * n + 1)])
    return Waveform("pwl", np.unique(report), kt, kv)
