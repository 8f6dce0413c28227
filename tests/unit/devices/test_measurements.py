"""Reading measurement files: formats, units, several sweeps, and errors that name the place."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cimphys.devices.measurements import file_hash, read_sweeps
from cimphys.errors import InputError

B1500 = """SetupTitle, I/V Sweep
PrimitiveTest, I/V Sweep
TestParameter, Channel.UnitType, SMU, SMU
TestParameter, Channel.VName, V1, V2
TestParameter, Measurement.Primary.Locus, Double
AnalysisSetup, Analysis.Setup.Vector.Graph.XAxis.Name, V1
DataName, V1, I1, Time
DataValue, 0, 0, 0.001
DataValue, 0.5, 1.5e-5, 0.002
DataValue, 1, 4e-5, 0.003
SetupTitle, I/V Sweep
DataName, V1, I1, Time
DataValue, 0, 0, 0.004
DataValue, -0.5, -1e-5, 0.005
"""


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_plain_table_with_units_in_the_header(tmp_path):
    path = _write(tmp_path, "# sweep of device A3\nTime (ms), Voltage (V), Current [mA]\n0, 0.0, 0.0\n1, 0.2, 0.5\n2, 0.4, 1.25\n")
    (sw,) = read_sweeps(path)
    np.testing.assert_allclose(sw.voltage, [0.0, 0.2, 0.4])
    np.testing.assert_allclose(sw.current, [0.0, 5e-4, 1.25e-3])  # mA -> A
    np.testing.assert_allclose(sw.time, [0.0, 1e-3, 2e-3])  # ms -> s
    assert sw.lines == (3, 5)


def test_tsv_with_slash_units_and_repeated_headers(tmp_path):
    path = _write(tmp_path, "V/V\tI/uA\n0.1\t2\n0.2\t4\nV/V\tI/uA\n-0.1\t-3\n", "d.tsv")
    a, b = read_sweeps(path)
    np.testing.assert_allclose(a.current, [2e-6, 4e-6])
    np.testing.assert_allclose(b.voltage, [-0.1])
    assert a.time is None


def test_two_columns_without_header_blank_lines_split_sweeps(tmp_path):
    a, b = read_sweeps(_write(tmp_path, "0 0\n0.5 1e-6\n\n0.5 2e-6\n1.0 5e-6\n", "iv.txt"))
    np.testing.assert_allclose(b.current, [2e-6, 5e-6])
    assert (a.lines, b.lines) == ((1, 2), (4, 5))


def test_sweep_column_splits_sweeps(tmp_path):
    text = "sweep,V,I\n1,0,0\n1,1,1e-3\n2,0,0\n2,-1,-2e-3\n"
    sweeps = read_sweeps(_write(tmp_path, text))
    assert [s.voltage.size for s in sweeps] == [2, 2] and sweeps[1].current[1] == -2e-3


def test_keysight_b1500_export(tmp_path):
    a, b = read_sweeps(_write(tmp_path, B1500))
    np.testing.assert_allclose(a.voltage, [0, 0.5, 1])
    np.testing.assert_allclose(a.current, [0, 1.5e-5, 4e-5])
    np.testing.assert_allclose(b.time, [0.004, 0.005])
    assert a.lines == (8, 10)


@pytest.mark.parametrize(("text", "match"), [
    ("V,I\n0.1,abc\n", r"data.csv, line 2, column 2: 'abc' is not a finite number"),
    ("V,I\n0.1,nan\n", r"line 2, column 2: 'nan'"),
    ("V (V),I (mV)\n0.1,1\n", r"line 1, column 2 \('I \(mV\)'\): unit 'mV' is not a current unit"),
    ("Voltage,Temperature\n0.1,300\n", r"line 1: header .* has no current column"),
    ("V,I\n0.1,1,2\n", r"line 2: 3 columns, the header has 2"),
    ("0.1 1 2\n", r"line 1: 3 columns and no header"),
    ("# nothing\n", r"no data rows"),
    ("DataValue, 1, 2\n", r"line 1: a DataValue row before any DataName row"),
])
def test_bad_files_name_file_line_and_column(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        read_sweeps(_write(tmp_path, text))


def test_missing_file_and_hash(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_sweeps(tmp_path / "none.csv")
    path = _write(tmp_path, "0 0\n1 1\n")
    import hashlib

    assert file_hash(path) == hashlib.sha256(b"0 0\n1 1\n").hexdigest()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-1e-2, 1e-2)), min_size=1, max_size=30),
       st.sampled_from([("mV", 1e-3, "uA", 1e-6), ("V", 1.0, "A", 1.0), ("V", 1.0, "nA", 1e-9)]),
       st.sampled_from([",", "\t", ";"]))
def test_round_trip_any_units_and_delimiter(tmp_path_factory, rows, units, sep):
    uv, fv, ui, fi = units
    body = "".join(f"{v!r}{sep}{i!r}\n" for v, i in rows)
    path = tmp_path_factory.mktemp("rt") / "x.csv"
    path.write_text(f"Voltage ({uv}){sep}Current ({ui})\n{body}")
    (sw,) = read_sweeps(path)
    np.testing.assert_allclose(sw.voltage, [v * fv for v, _ in rows], rtol=1e-15)
    np.testing.assert_allclose(sw.current, [i * fi for _, i in rows], rtol=1e-15)
