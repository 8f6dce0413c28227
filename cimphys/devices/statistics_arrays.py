"""A dynamic card's write-verify statistics as plain arrays, for the disk cache.

:func:`statistics_arrays` writes a :class:`~cimphys.devices.programming_statistics.DeviceStatistics`
as NumPy arrays plus one UTF-8 JSON field (no pickle, no callable); :func:`statistics_from_arrays`
rebuilds it, the device model from its card and the sampler from the measured errors.
"""

from __future__ import annotations

import json

import numpy as np

from ..cards import Card
from ..errors import InputError
from .dynamic_model import model_class
from .programming_statistics import DeviceStatistics, binned_errors, programming_card

__all__ = ["statistics_arrays", "statistics_from_arrays"]

_TABLE_ARRAYS = ("level", "error", "pulses", "energy")


def statistics_arrays(stats: DeviceStatistics) -> dict[str, np.ndarray]:
    """A dynamic card's statistics as plain arrays, for a disk cache (no pickle, no callable).

    The write-verify table's ``level``, ``error``, ``pulses`` and ``energy`` arrays, and
    ``fields``: UTF-8 JSON (a ``uint8`` array) of every other field -- ``params``, ``aihwkit``,
    ``crosssim``, ``notes``, ``window``, ``bounds``, the pulse ``width`` -- with floats written
    exactly (``repr``).  :func:`statistics_from_arrays` rebuilds the object, the device model from
    its card and the exports' sampler from the errors.
    """
    if stats.family != "dynamic" or stats.table is None:
        raise InputError(f"statistics: only a dynamic card's write-verify statistics are stored as arrays "
                         f"(family {stats.family!r}: its statistics are closed-form and cheap)")
    fields = {"params": stats.params, "aihwkit": stats.aihwkit, "crosssim": stats.crosssim, "notes": stats.notes,
              "read_noise": stats.read_noise, "window": list(stats.window), "bounds": list(stats.bounds),
              "width": stats.table["width"]}
    text = json.dumps(fields, allow_nan=True, default=_json_value)
    out = {k: np.ascontiguousarray(stats.table[k]) for k in _TABLE_ARRAYS}
    out["fields"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return out


def statistics_from_arrays(card: Card, arrays, temperature: float | None = None) -> DeviceStatistics:
    """The :class:`DeviceStatistics` stored by :func:`statistics_arrays` for ``card`` (programmed at
    ``temperature``, K, as :func:`device_statistics` was called)."""
    missing = [k for k in _TABLE_ARRAYS + ("fields",) if k not in arrays]
    if missing:
        raise InputError(f"statistics: stored arrays lack {missing}")
    f = json.loads(bytes(np.asarray(arrays["fields"], dtype=np.uint8)).decode("utf-8"))
    card = programming_card(card, temperature)
    table = {k: np.array(arrays[k]) for k in _TABLE_ARRAYS}
    table["width"] = float(f["width"])
    return DeviceStatistics(binned_errors(table["error"]), f["params"], bool(f["read_noise"]), f["aihwkit"],
                            f["crosssim"], f["notes"], family="dynamic", model=model_class(card).from_card(card),
                            window=tuple(float(x) for x in f["window"]), bounds=tuple(float(x) for x in f["bounds"]),
                            table=table)


def _json_value(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"statistics: cannot store {type(value).__name__} as JSON")
