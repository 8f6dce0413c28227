"""Reading measured I-V sweeps from the files parameter analysers export.

:func:`read_sweeps` reads a text file of delimited columns (comma, tab, semicolon or spaces) and
returns its sweeps in SI units.  It understands

* **plain tables** with a header row naming the columns, units in the header: ``V``,
  ``Voltage (V)``, ``I [mA]``, ``Current/uA``, ``Time (ms)``, ``Id(A)`` -- voltage, current and an
  optional time column are recognised by name (first letter ``V``/``I``/``t`` or the words voltage,
  current, time); a column without a unit is taken in SI (V, A, s);
* **two-column files** without a header: voltage (V) and current (A);
* **Keysight B1500 (EasyEXPERT) CSV exports**: ``DataName, V1, I1, Time`` rows start a block,
  ``DataValue, ...`` rows carry the data (SI units), any other row (``SetupTitle``,
  ``TestParameter``, ``AnalysisSetup``, ...) is metadata;
* **several sweeps per file**: a new header (or ``DataName`` row), a blank line between blocks, or
  a column named ``sweep``/``index``/``run`` holding the sweep number.

Lines starting with ``#`` or ``!`` are comments.  A bad file gets one :class:`InputError` naming
the file, the line and the column (a cell that is not a number, a unit nobody knows, a missing
voltage or current column, a row of the wrong length).  Nothing in a file is executed.

References
----------
Keysight B1500A Semiconductor Device Analyzer, *EasyEXPERT User's Guide*, "Data export" (CSV:
``SetupTitle``, ``PrimitiveTest``, ``TestParameter``, ``DataName``, ``DataValue`` rows).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["UNITS", "Sweep", "file_hash", "read_sweeps"]

#: Unit of a header -> (quantity, factor to SI).
UNITS = {
    **{f"{p}V": ("voltage", f) for p, f in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("µ", 1e-6), ("k", 1e3))},
    **{f"{p}A": ("current", f) for p, f in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("µ", 1e-6), ("n", 1e-9),
                                            ("p", 1e-12), ("f", 1e-15))},
    **{f"{p}s": ("time", f) for p, f in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("µ", 1e-6), ("n", 1e-9))},
    "sec": ("time", 1.0),
}
_UNIT = re.compile(r"^(?P<name>.*?)\s*(?:\((?P<p>[^)]*)\)|\[(?P<b>[^\]]*)\]|/\s*(?P<s>\w+))\s*$")
_SWEEP_NAMES = {"sweep", "index", "run", "cycle", "sweep_index"}
_MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class Sweep:
    """One sweep in SI units: ``voltage`` (V), ``current`` (A), ``time`` (s, or None); ``lines``
    the first and last line numbers (1-based) in the file."""

    voltage: np.ndarray
    current: np.ndarray
    time: np.ndarray | None
    lines: tuple[int, int]


def file_hash(path) -> str:
    """SHA-256 of the file's bytes (the provenance of a fit)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _split(line: str) -> list[str]:
    for sep in ("\t", ",", ";"):
        if sep in line:
            return [c.strip() for c in line.split(sep)]
    return line.split()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _column(path: Path, lineno: int, col: int, header: str) -> tuple[str, float]:
    """(quantity, factor to SI) of a header cell: ``voltage``/``current``/``time``/``sweep``/``other``."""
    m = _UNIT.match(header)
    name, unit = (m["name"], m["p"] or m["b"] or m["s"]) if m else (header, None)
    key = name.strip().lower()
    if key in _SWEEP_NAMES:
        return "sweep", 1.0
    if key.startswith(("v", "voltage")) or "voltage" in key:
        quantity = "voltage"
    elif key.startswith(("i", "current")) or "current" in key:
        quantity = "current"
    elif key == "t" or key.startswith("time") or re.fullmatch(r"t\d*", key):
        quantity = "time"
    else:
        return "other", 1.0
    if unit is None:
        return quantity, 1.0
    unit = unit.strip()
    if unit not in UNITS or UNITS[unit][0] != quantity:
        known = sorted(u for u, (q, _) in UNITS.items() if q == quantity)
        raise InputError(f"{path}, line {lineno}, column {col} ({header!r}): unit {unit!r} is not a {quantity} "
                         f"unit cimphys knows; expected one of {known}")
    return quantity, UNITS[unit][1]


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.sweeps: list[Sweep] = []
        self.columns: dict[str, tuple[int, float]] | None = None
        self.rows: list[list[float]] = []
        self.first = 0

    def header(self, lineno: int, cells: list[str]) -> None:
        self.flush()
        found: dict[str, tuple[int, float]] = {}
        for col, cell in enumerate(cells, start=1):
            quantity, factor = _column(self.path, lineno, col, cell)
            if quantity != "other" and quantity not in found:
                found[quantity] = (col, factor)
        missing = [q for q in ("voltage", "current") if q not in found]
        if missing:
            raise InputError(f"{self.path}, line {lineno}: header {cells} has no {' or '.join(missing)} column "
                             f"(expected names such as 'V', 'Voltage (V)', 'I [mA]', 'Current/uA')")
        self.columns, self.width = found, len(cells)

    def row(self, lineno: int, cells: list[str]) -> None:
        if self.columns is None:  # a headerless file: voltage and current, SI
            if len(cells) != 2:
                raise InputError(f"{self.path}, line {lineno}: {len(cells)} columns and no header; a file without "
                                 f"a header must have two columns, voltage (V) and current (A)")
            self.columns, self.width = {"voltage": (1, 1.0), "current": (2, 1.0)}, 2
        if len(cells) != self.width:
            raise InputError(f"{self.path}, line {lineno}: {len(cells)} columns, the header has {self.width}")
        values = []
        for col, cell in enumerate(cells, start=1):
            value = _number(cell)
            used = any(c == col for c, _ in self.columns.values())
            if used and (value is None or not np.isfinite(value)):
                raise InputError(f"{self.path}, line {lineno}, column {col}: {cell!r} is not a finite number")
            values.append(value if value is not None else np.nan)
        if "sweep" in self.columns and self.rows and values[self.columns["sweep"][0] - 1] != self.rows[-1][
                self.columns["sweep"][0] - 1]:
            self.flush()
        if not self.rows:
            self.first = lineno
        self.rows.append(values)
        self.last = lineno

    def flush(self) -> None:
        if self.rows:
            data = np.array(self.rows)

            def get(q):
                col, factor = self.columns[q]
                return data[:, col - 1] * factor

            self.sweeps.append(Sweep(get("voltage"), get("current"), get("time") if "time" in self.columns else None,
                                     (self.first, self.last)))
        self.rows = []


def read_sweeps(path) -> list[Sweep]:
    """The sweeps of a measurement file, in SI units (see the module docstring for the formats).

    Raises
    ------
    InputError
        Naming the file, line and column of the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size > _MAX_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes, more than the {_MAX_BYTES} a measurement file may have")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    reader = _Reader(path)
    b1500 = any(line.lstrip().lower().startswith("dataname") for line in text.splitlines())
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith(("#", "!")):
            continue
        if not line:
            reader.flush()
            continue
        cells = _split(line)
        tag = cells[0].lower()
        if tag == "dataname":
            reader.header(lineno, cells[1:])
        elif tag == "datavalue":
            if reader.columns is None:
                raise InputError(f"{path}, line {lineno}: a DataValue row before any DataName row")
            reader.row(lineno, cells[1:])
        elif b1500:
            reader.flush()  # SetupTitle, TestParameter, ...: metadata between blocks
        elif all(_number(c) is None for c in cells):
            reader.header(lineno, cells)  # the first header, or a repeated one that starts a new sweep
        else:
            reader.row(lineno, cells)
    reader.flush()
    if not reader.sweeps:
        raise InputError(f"{path}: no data rows (expected voltage and current columns)")
    return reader.sweeps
