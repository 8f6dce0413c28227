"""Tiles report how they are solved and how well: path, iterations, checked residual, fallback, time.

The residual (:func:`cimphys.circuits.tile_check.check_characterisation`) compares ``T v`` and
``Y v`` for a seeded probe input with the network's own answer (Ohm's law, the sense nodes'
KCL, or a KCL-converged solve).  A sound characterisation reaches it to rounding; one off by a
part per million must show about that.  Wired tiles are checked on a seeded sample
(``tile_check.CHECK_FRACTION``); the tests here check every tile (the fixture below) but the one
that tests the sample.
"""

from __future__ import annotations

import numpy as np
import pytest

from cimphys.circuits import tile_characterise, tile_check
from cimphys.circuits.tile import Tile, TileStack
from cimphys.circuits.tile_characterise import Wires, characterisation_path, characterise
from cimphys.circuits.tile_check import check_characterisation
from cimphys.circuits.tile_report import PATHS, StackReport, characterise_stack_reported
from cimphys.devices import SinhCell
from cimphys.errors import InputError
from tests.unit.circuits.test_tile import make_card

# A sound characterisation: the reference solve reaches KCL to 1e-12 (linear.RTOL_SOLVE) and the
# block factorisation's rounding is ~cond * 1e-16 (cond ~1e3 here), so 1e-10 passes every sound
# path with a margin and is 10**4 below the 1e-6 error the wrong ones carry.
SOUND = 1e-10
WRONG = 1e-6


@pytest.fixture(autouse=True)
def every_tile_checked(monkeypatch):
    monkeypatch.setattr(tile_check, "CHECK_FRACTION", 1.0)


WIRES = {
    "closed_form": (Wires(), True),
    "sense_only": (Wires(r_sense=100.0), True),
    "transfer": (Wires(1.0, 1.0, 10.0, 100.0), False),
    "reciprocity": (Wires(1.0, 1.0, 10.0, 100.0), False),
    "block": (Wires(2.0, 1.0, 10.0, 50.0), True),
}


def _g(rng, m=12, n=9):
    return rng.uniform(1e-6, 1e-4, (m, n))


@pytest.mark.parametrize("path", list(WIRES))
def test_sound_characterisation_has_a_rounding_residual_and_a_wrong_one_does_not(rng, path):
    wires, admittance = WIRES[path]
    g = _g(rng, 9, 12) if path == "reciprocity" else _g(rng)
    assert characterisation_path(g.shape, wires, admittance) == path
    t, y = characterise(g, wires, admittance)
    assert check_characterisation(g, wires, t, y) < SOUND
    assert check_characterisation(g, wires, t * (1 + WRONG), y) > 0.5 * WRONG
    # an error in one column shows diluted by the other M - 1 inputs of the probe (about 1/M)
    bad = t.copy()
    bad[:, 3] *= 1 + 1e3 * WRONG
    assert check_characterisation(g, wires, bad, y) > 1e3 * WRONG / (20 * g.shape[0])
    if y is not None:
        assert check_characterisation(g, wires, t, y * (1 + WRONG)) > 0.5 * WRONG


def test_stack_reports_its_path_per_tile_and_sums_them(rng):
    g = rng.uniform(1e-6, 1e-4, (3, 12, 9))
    t, y, report = characterise_stack_reported(g, Wires(2.0, 1.0, 10.0, 50.0), True)
    assert report.paths == ("block",) * 3 and (report.iterations == 1).all()  # one factorisation each
    assert report.max_residual < SOUND and (report.time > 0).all() and not report.fell_back.any()
    assert report.counts == {"block": 3} and report.total_time == pytest.approx(report.time.sum())
    ds = report.to_xarray()
    assert ds.time.attrs["units"] == "s" and ds.residual.attrs["units"] == "1"
    assert ds.attrs["tile_solver_counts"] == "block:3" and ds.attrs["tile_solver_time_units"] == "s"
    closed = characterise_stack_reported(g, Wires(), True)[2]
    assert closed.paths == ("closed_form",) * 3 and (closed.iterations == 0).all()  # nothing solved


def test_report_survives_the_pool(rng):
    g = rng.uniform(1e-6, 1e-4, (4, 12, 9))
    serial = characterise_stack_reported(g, Wires(1.0, 1.0, 10.0, 100.0), False, max_workers=1)
    pooled = characterise_stack_reported(g, Wires(1.0, 1.0, 10.0, 100.0), False, max_workers=2)
    assert np.array_equal(serial[0], pooled[0])
    assert serial[2].paths == pooled[2].paths and np.array_equal(serial[2].residual, pooled[2].residual)


@pytest.fixture
def sampled(rng, monkeypatch):
    """40 wired tiles characterised by a pool with the share ``CHECK_FRACTION = 1/4`` checked:
    ``(g, wires, StackReport)``."""
    monkeypatch.setattr(tile_check, "CHECK_FRACTION", 0.25)
    g = rng.uniform(1e-6, 1e-4, (40, 12, 9))
    wires = Wires(1.0, 1.0, 10.0, 100.0)
    return g, wires, characterise_stack_reported(g, wires, False, max_workers=2)[2]


def test_wired_tiles_are_checked_on_a_seeded_sample_that_depends_on_the_tile_alone(sampled):
    g, wires, report = sampled
    checked = report.checked
    # 40 draws at 1/4: 10 +- 2.7 expected; the draw is seeded, so the count is exact run to run
    assert 3 <= checked.sum() <= 20 and np.isnan(report.residual[~checked]).all()
    assert report.max_residual < SOUND and (report.residual[checked] < SOUND).all()
    # the same tiles are checked whatever the stack they sit in and the order they run in
    halves = StackReport.join(characterise_stack_reported(part, wires, False, max_workers=1)[2]
                              for part in (g[:17], g[17:]))
    assert np.array_equal(halves.checked, checked)
    assert report.to_xarray().attrs["tile_solver_checked"] == checked.sum()
    assert report.attrs()["tile_solver_tiles"] == 40
    # closed forms cost a mat-vec: every tile is checked
    assert characterise_stack_reported(g, Wires(r_sense=100.0), False)[2].checked.all()


def test_unchecked_tiles_are_said_so_and_no_sum_reads_their_nan(sampled):
    g, wires, report = sampled
    checked = report.checked
    # the flag is the tile check's own decision, stored per tile, not read back from the NaN
    assert checked.dtype == bool and np.array_equal(checked, [tile_check.in_sample(x) for x in g])
    assert 0 < checked.sum() < len(report) and [t.checked for t in report] == checked.tolist()
    assert np.isfinite(report.residual[checked]).all() and np.isnan(report.residual[~checked]).all()
    # every sum is a number over the checked tiles alone
    attrs = report.attrs()
    numbers = {k: v for k, v in attrs.items() if isinstance(v, (int, float))}
    assert all(np.isfinite(v) for v in numbers.values()), attrs
    assert attrs["tile_solver_max_residual"] == report.residual[checked].max() and attrs["tile_solver_checked"] == checked.sum()
    ds = report.to_xarray()
    assert np.array_equal(ds["checked"].values.astype(bool), checked) and "NaN" in ds["residual"].attrs["long_name"]
    # the flag survives the cache's arrays, slicing and joining
    back = StackReport.from_arrays(report.arrays())
    assert np.array_equal(back.checked, checked) and np.array_equal(back.residual, report.residual, equal_nan=True)
    assert np.array_equal(StackReport.join([report[:5], report[5:]]).checked, checked)
    # a NaN that claims to be checked, or a number that claims not to be, is refused
    with pytest.raises(InputError, match="checked"):
        tile_check.TileReport("transfer", 1, float("nan"), False, 0.0, True)
    with pytest.raises(InputError, match="checked"):
        tile_check.TileReport("transfer", 1, 1e-14, False, 0.0, False)
    old = {k: v for k, v in report.arrays().items() if k != "checked"}  # an entry from before the sample
    with pytest.raises(InputError, match="no 'checked' array"):
        StackReport.from_arrays(old)
    # a wrong characterisation on a checked tile still shows (the check is computed, not assumed)
    k = int(np.flatnonzero(checked)[0])
    t, y = characterise(g[k], wires, False)
    assert tile_check.tile_report("transfer", g[k], wires, t * (1 + WRONG), y, 0.0, sample=True).residual > 0.5 * WRONG


def test_unit_solves_report_the_dispatchers_iterations(rng, monkeypatch):
    monkeypatch.setattr(tile_characterise, "block_fits", lambda network: False)  # as for a tile too big to factor
    g = rng.uniform(1e-6, 1e-4, (1, 12, 20))
    t, y, report = characterise_stack_reported(g, Wires(1.0, 1.0, 10.0, 100.0), True)
    assert report.paths == ("unit_solves",) and report.max_residual < SOUND
    # the unit solves of this 20-column array go to the symmetric CG (a == b, no merged node, over
    # linear.AUTO_BLOCK_MAX_COLS columns): Krylov iterations, not one factorisation
    assert report.iterations[0] > 1


def test_arrays_round_trip_and_bad_codes_are_refused(rng):
    report = characterise_stack_reported(rng.uniform(1e-6, 1e-4, (2, 6, 5)), Wires(r_sense=10.0), True)[2]
    back = StackReport.from_arrays(report.arrays())
    assert back.paths == report.paths and np.array_equal(back.residual, report.residual)
    assert list(back[1:]) == list(report)[1:]
    arrays = report.arrays()
    arrays["path"] = np.array([0, len(PATHS)])
    with pytest.raises(InputError, match="path codes"):
        StackReport.from_arrays(arrays)


def test_tile_and_stack_expose_the_report(rng):
    card = make_card({"r_wire_per_cell_ohm": 5.0, "r_driver_ohm": 20.0})  # 12 x 8, wires
    g = rng.uniform(1e-6, 16e-6, (2, 12, 8))
    stack = TileStack(card, g, seeds=0)
    report = stack.solve_report
    assert report.paths == (stack.solver_path,) * 2 and report.max_residual < SOUND
    # a characterisation handed in is checked, not trusted: a wrong one shows
    t, y = stack.characterisation
    given = TileStack(card, g, seeds=0, characterisation=(t * (1 + WRONG), y))
    assert given.solve_report.paths == ("supplied",) * 2 and given.solve_report.max_residual > 0.1 * WRONG
    carried = TileStack(card, g, seeds=0, characterisation=(t, y, report))
    assert carried.solve_report is report
    tile = Tile(card, g[0])
    assert tile.solve_report.paths == (tile.solver_path,)


def test_nonlinear_reads_report_their_newton_iterations(rng):
    tile = Tile(make_card({"r_wire_per_cell_ohm": 2.0}), None, cell=SinhCell(k=rng.uniform(1e-7, 1e-6, (12, 8)), a=3.0))
    assert tile.solve_report.paths == ("newton",) and tile.solve_report.iterations[0] == 0  # no read yet
    assert not tile.solve_report.checked[0] and tile.solve_report.max_residual == 0.0  # nothing measured yet
    tile.read(rng.uniform(0.0, 0.3, (3, 12)))
    report = tile.solve_report
    # Newton stops at a KCL residual of RTOL_KCL = 1e-11 of its current scale; 1e-9 leaves room for
    # the scale here being the largest cell current
    assert report.paths == ("newton",) and report.iterations[0] >= 1 and report.max_residual < 1e-9
    assert report.time[0] > 0 and not report.fell_back[0]
