"""The device laws: current and state rate of every dynamic model as Numba kernels.

One module per law (:mod:`~cimphys.devices.laws.drift`, :mod:`~cimphys.devices.laws.team`,
:mod:`~cimphys.devices.laws.yakopcic`, :mod:`~cimphys.devices.laws.stanford_pku`), the scalar
helpers they share (:mod:`~cimphys.devices.laws.kernel_math`) and the dispatch on the model id
that lets one compiled integrator serve every model (:mod:`~cimphys.devices.laws.dispatch`).  The
classes that hold a model's parameters and check them (:class:`~cimphys.devices.team.VTEAM`, ...)
import their law from here; nothing here imports a class.

Numba keys the cache of a kernel on the source of the file that defines it, so a kernel in
another file that inlines a law (the integrators of :mod:`cimphys.devices.dynamics` and
:mod:`cimphys.devices.fixed_step`, the selector cell, the dispatch itself) would keep stale
machine code after an edit of the law alone.  Each such file carries the line
``KERNEL_SOURCES = "<digest>"``, the value of :func:`sources_digest` over this folder, so that an
edit of any law changes those files too; ``tests/unit/devices/test_dynamics.py`` checks the value
and prints the new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sources_digest"]


def sources_digest() -> str:
    """sha256 (16 hex digits) of every law's source in this folder, ``KERNEL_SOURCES`` lines left out."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        h.update(path.name.encode())
        h.update("".join(line for line in text.splitlines(True) if not line.startswith("KERNEL_SOURCES")).encode())
    return h.hexdigest()[:16]
