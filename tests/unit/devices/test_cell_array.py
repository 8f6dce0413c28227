"""The cell array: programming, ageing and read noise of a tile's cells through the device models.

References are the device models' own closed forms (PCM polynomial, drift law, 1/f law, the
Arrhenius retention law), the exact Johnson-Nyquist and Schottky formulas, binomial statistics
for the stuck-at faults, the package's RTN sampler, and a direct integration of a pulse for the
write energy.
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from cimphys.cards import card_from_mapping, load_circuit, load_device
from cimphys.devices import CellArrayModel, ProgrammedCells
from cimphys.devices.cell_array import CONDITIONAL_KEYS
from cimphys.devices.noise import BOLTZMANN, ELEMENTARY_CHARGE, random_telegraph, thermal_noise_std
from cimphys.devices.pcm import PCMModel
from cimphys.devices.programming_statistics import PROG_BINS
from cimphys.devices.retention import RetentionModel
from cimphys.errors import InputError

G_MIN, G_MAX, V_READ, BANDWIDTH = 1e-6, 1e-5, 0.2, 5e6  # the ISAAC-like tile's window, read, 1/(2 x 100 ns)
N = 100_000  # cells of the sampled checks
# Sampled means and standard deviations: 5 standard errors (a correct sampler fails with
# probability < 1e-6 per check; every draw is seeded, so a pass is reproducible anyway).
K_SIGMA = 5.0
RTOL_EXACT = 1e-14  # closed forms evaluated in the same order in double precision


def with_tables(card, **tables):
    """The card with extra or replaced tables, checked like a card on disk."""
    data = tomllib.loads(card.to_toml())
    data.update(tables)
    return card_from_mapping(data, "device", f"{card.name} (test)", card.name)


def pcm_cells(card=None, **kwargs):
    return CellArrayModel.from_card(card or load_device("nandakumar2019_pcm"), g_min=G_MIN, g_max=G_MAX,
                                    v_read=V_READ, bandwidth=BANDWIDTH, **kwargs)


@pytest.fixture(scope="module")
def rram():
    """Yakopcic (write-verified with fixed pulses; characterisation ~1.5 s)."""
    return CellArrayModel.from_card("yakopcic2011_oblea", g_min=G_MIN, g_max=G_MAX, v_read=V_READ,
                                    bandwidth=BANDWIDTH)


def targets(level, shape=(N // 100, 10, 10)):
    return np.full(shape, G_MIN + level * (G_MAX - G_MIN))


# ---------------------------------------------------------------------------- PCM against its closed forms
@pytest.mark.parametrize("level", [0.2, 0.5, 0.7])
def test_pcm_programming_spread_is_the_published_polynomial(level):
    cells = pcm_cells()
    pcm = cells.statistics.model
    prog = cells.program(targets(level), np.random.default_rng(1))
    g_dev = cells.to_device(prog.g)
    g_t = level * pcm.g_max
    sigma = float(pcm.sigma_prog(g_t))  # > 5 sigma from the device bounds 0 and g_max, where cells are clipped
    assert abs(g_dev.mean() - g_t) < K_SIGMA * sigma / math.sqrt(N)
    assert abs(g_dev.std() / sigma - 1.0) < K_SIGMA / math.sqrt(2 * N)


def test_pcm_drift_follows_the_power_law_with_the_published_exponents():
    cells = pcm_cells()
    pcm = cells.statistics.model
    level, t = 0.5, 1e5
    prog = cells.program(targets(level), np.random.default_rng(2))
    ratio = cells.to_device(prog.conductance(time=t)) / cells.to_device(prog.conductance(time=0.0))
    nu = -np.log(ratio) / math.log(t / pcm.t0)  # each cell's own exponent, exactly
    np.testing.assert_allclose(nu, prog.nu, rtol=1e-9)
    expected = float(pcm.nu_expected(level * pcm.g_max))  # folded normal mean of the IBM fit
    assert abs(nu.mean() - expected) < K_SIGMA * nu.std() / math.sqrt(N)
    # no drift before the reference read t0, and t = 0 is the programmed state
    np.testing.assert_array_equal(prog.conductance(time=0.5 * pcm.t0), prog.g)
    np.testing.assert_array_equal(prog.conductance(time=0.0), prog.g)


def test_pcm_flicker_is_the_published_read_noise_in_the_tile_window():
    cells = pcm_cells()
    pcm = cells.statistics.model
    g = np.array([[2e-6, 5e-6], [8e-6, 1e-5]])
    t = 3600.0
    _, _, flicker = cells.read_noise(g, time=t)
    g_dev = (g - G_MIN) / (G_MAX - G_MIN) * pcm.g_max
    sigma_tile = pcm.sigma_read(g_dev, t) * g_dev * (G_MAX - G_MIN) / pcm.g_max  # S
    np.testing.assert_allclose(flicker, sigma_tile**2, rtol=1e-12)
    # before t_read no 1/f noise has accumulated (the law's logarithm is negative there)
    assert not cells.read_noise(g, time=0.0)[2].any()


# ---------------------------------------------------------------------------- read noise: exact forms
def test_thermal_and_shot_coefficients_are_the_closed_forms():
    cells = pcm_cells()
    g, temp = np.array([[5e-6]]), 350.0
    thermal, shot, _ = cells.read_noise(g, temperature=temp, time=1.0)
    assert thermal[0, 0] == pytest.approx(4.0 * BOLTZMANN * temp * 5e-6 * BANDWIDTH, rel=RTOL_EXACT)
    assert shot[0, 0] == pytest.approx(2.0 * ELEMENTARY_CHARGE * 5e-6 * BANDWIDTH, rel=RTOL_EXACT)
    # the same thermal noise as the noise module's own Johnson-Nyquist function
    assert thermal[0, 0] == pytest.approx(float(thermal_noise_std(5e-6, BANDWIDTH, temp)) ** 2, rel=1e-12)


def test_rtn_variance_matches_the_telegraph_sampler():
    rtn = {"amplitude_rel": 0.05, "tau_low": 1.0, "tau_high": 3.0}
    cells = pcm_cells(with_tables(load_device("nandakumar2019_pcm"), rtn=rtn))
    base = pcm_cells()
    g = np.array([[6e-6]])
    extra = cells.read_noise(g, time=60.0)[2] - base.read_noise(g, time=60.0)[2]
    trace = random_telegraph(50_000, 1.0, 1.0, 3.0, 0.05 * 6e-6, np.random.default_rng(3), n_traces=4)
    sampled = float(trace.noise.values.var())
    # 2e5 samples 1 s apart, correlation time tau_l tau_h / (tau_l + tau_h) = 0.75 s: ~1e5
    # independent draws of a Bernoulli variable p = 0.75, whose sample variance has a relative
    # standard error of ~ sqrt((1 - 4 p (1 - p)) / (p (1 - p) n)) ~ 0.3 %; 2 % is ~6 of them
    assert extra[0, 0] == pytest.approx(sampled, rel=0.02)
    assert extra[0, 0] == pytest.approx(0.75 * 0.25 * (0.05 * 6e-6) ** 2, rel=RTOL_EXACT)


# ---------------------------------------------------------------------------- variability and faults
def test_stuck_at_rates_within_binomial_error_and_cells_stay_stuck():
    card = with_tables(load_device("nandakumar2019_pcm"), variability={"p_stuck_on": 0.01, "p_stuck_off": 0.03})
    cells = pcm_cells(card)
    prog = cells.program(targets(0.5), np.random.default_rng(4))
    for code, p in ((1, 0.01), (-1, 0.03)):
        count = int((prog.faults == code).sum())
        assert abs(count - N * p) < K_SIGMA * math.sqrt(N * p * (1 - p))
    # stuck on = the PCM's g_max = the tile's g_max; stuck off = 0 S = g_min; ageing leaves them
    aged = prog.conductance(time=1e6)
    np.testing.assert_allclose(aged[prog.faults == 1], G_MAX, rtol=1e-12)
    np.testing.assert_allclose(aged[prog.faults == -1], G_MIN, rtol=1e-12)


@pytest.mark.parametrize("distribution", ["lognormal", "normal"])
def test_d2d_sigma_recovered(distribution):
    sigma = 0.08
    card = with_tables(load_device("nandakumar2019_pcm").with_parameters(prog_coeff=[0.0, 0.0, 0.0]),
                       variability={"d2d_sigma": sigma, "distribution": distribution})
    cells = pcm_cells(card)
    level = 0.3  # 7.5 uS: the clip at g_max = 25 uS is > 10 sigma away
    prog = cells.program(targets(level), np.random.default_rng(5))
    factor = cells.to_device(prog.g) / (level * cells.statistics.model.g_max)
    spread = np.log(factor).std() if distribution == "lognormal" else factor.std()
    assert abs(spread / sigma - 1.0) < K_SIGMA / math.sqrt(2 * N)


def test_endurance_window_bounds_the_programmed_conductance():
    endurance = {"cycles": [1.0, 1e6], "g_on": [25e-6, 15e-6], "g_off": [1e-7, 3e-6]}
    card = with_tables(load_device("nandakumar2019_pcm"), endurance=endurance)
    fresh = pcm_cells(card)
    worn = pcm_cells(card, cycles=1e6)
    rng = np.random.default_rng(6)
    g = np.linspace(G_MIN, G_MAX, 1000).reshape(10, 100)
    g_worn = worn.to_device(worn.program(g, rng).g)
    assert g_worn.min() >= 3e-6 - 1e-18 and g_worn.max() <= 15e-6 + 1e-18
    assert fresh.to_device(fresh.program(g, np.random.default_rng(6)).g).max() > 20e-6


# ---------------------------------------------------------------------------- each effect grows with its size
def rms_error(cells, seed=7, time=0.0, temperature=None):
    g_t = np.random.default_rng(100).uniform(G_MIN, G_MAX, (20, 64, 64))
    prog = cells.program(g_t, np.random.default_rng(seed))
    return float(np.sqrt(np.mean((prog.conductance(time=time, temperature=temperature) - g_t) ** 2)))


def test_each_effect_grows_with_its_magnitude():
    pcm = load_device("nandakumar2019_pcm")
    quiet = pcm.with_parameters(prog_coeff=[0.0, 0.0, 0.0])
    checks = {
        "programming": [rms_error(pcm_cells(pcm.with_parameters(prog_coeff=[s * c for c in pcm["prog_coeff"]])))
                        for s in (0.5, 1.0, 2.0)],
        "d2d": [rms_error(pcm_cells(with_tables(quiet, variability={"d2d_sigma": s}))) for s in (0.02, 0.05, 0.1)],
        "c2c": [rms_error(pcm_cells(with_tables(quiet, variability={"c2c_sigma": s}))) for s in (0.02, 0.05, 0.1)],
        "stuck": [rms_error(pcm_cells(with_tables(quiet, variability={"p_stuck_on": p, "p_stuck_off": p})))
                  for p in (1e-3, 1e-2, 5e-2)],
        "drift": [rms_error(pcm_cells(quiet), time=t) for t in (1e2, 1e4, 1e6)],
        "flicker": [float(pcm_cells().read_noise(np.full((1, 1), 5e-6), time=t)[2][0, 0]) for t in (1.0, 1e2, 1e4)],
        "thermal": [float(pcm_cells().read_noise(np.full((1, 1), 5e-6), temperature=t, time=1.0)[0][0, 0])
                    for t in (250.0, 300.0, 400.0)],
    }
    for name, values in checks.items():
        assert values[0] < values[1] < values[2], (name, values)


# ---------------------------------------------------------------------------- dynamic RRAM
def test_rram_cells_carry_their_write_verify_statistics(rram):
    prog = rram.program(targets(0.53, (4, 32, 32)), np.random.default_rng(8))
    table = rram.statistics.table
    lo, hi = rram.statistics.window
    err = (rram.to_device(prog.g) - rram.to_device(prog.g_target)) / (hi - lo)
    bin_errors = table["error"][int(0.53 * PROG_BINS)]
    # each cell carries the error of one measured Monte-Carlo cell of its bin (to rounding)
    assert np.abs(err.reshape(-1, 1) - bin_errors[None, :]).min(axis=1).max() < 1e-9
    assert (prog.pulses >= 1).all() and (prog.write_energy > 0).all()
    t_verify = 0.5 / BANDWIDTH
    np.testing.assert_allclose(prog.write_time, prog.pulses * table["width"] + (prog.pulses + 1) * t_verify,
                               rtol=RTOL_EXACT)
    assert prog.nu is None and prog.tau_factor is None
    d = rram.describe()
    assert d["sample_size"] == table["error"].size and d["n_failed"] == 0 and d["mean_pulses"] > 1
    assert "yakopcic.a2" in d["conditional_keys"] and "vteam.a_on" not in d["conditional_keys"]
    assert len(d["energy_per_pulse_j"]) == PROG_BINS and min(d["energy_per_pulse_j"]) > 0


def test_pulse_energy_against_integrating_v_times_i(rram):
    """The write-verify energy (trapezoid in the state, flat top only) against the integral of
    V(t) I(t) over one pulse, edges included, on a 4000-point grid: the estimate leaves out the
    two edges of width/20 each, at most 2/3 * 1/10 = 3.3 % for an ohmic cell (less for a
    super-linear I-V), and nothing else: 0.96 < estimate / integral <= 1 (+ rounding)."""
    from cimphys.devices.dynamics import integrate
    from cimphys.devices.programming import _pulse_energy, _pulse_waveform

    model, width = rram.statistics.model, rram.statistics.table["width"]
    v = rram.statistics.params["write_verify"]["v_set"]
    x0 = np.array([rram.statistics.params["write_verify"]["state0"], 0.5])
    wave, _ = _pulse_waveform(width, 1)
    wave = wave.with_times(np.unique(np.concatenate([wave.t, np.linspace(wave.t[0], wave.t[-1], 4001)])))
    ds = integrate(model, wave, x0, record="all", v_scale=v, quantities=("state", "current"))
    power = v * ds.voltage.values[:, None] * ds.current.values
    exact = np.trapezoid(power, ds.time.values, axis=0)
    ratio = _pulse_energy(model, np.full(2, v), x0, ds.state.values[-1], width) / exact
    assert ((ratio > 0.96) & (ratio <= 1.0 + 1e-6)).all(), ratio


def test_rram_retention_is_the_arrhenius_law_and_grows_with_temperature():
    ea = 1.0 * ELEMENTARY_CHARGE  # 1 eV, a typical oxygen-vacancy hopping barrier (assumed for the test)
    table = {"g_rest": 1e-6, "tau_ref": 1e4, "beta": 1.0, "activation_energy": ea, "temperature_ref": 300.0}
    card = with_tables(load_device("yakopcic2011_oblea"), retention=table)
    cells = CellArrayModel.from_card(card, g_min=G_MIN, g_max=G_MAX, v_read=V_READ, bandwidth=BANDWIDTH)
    prog = cells.program(targets(0.8, (2, 16, 16)), np.random.default_rng(9))
    law = RetentionModel(**table)
    g0 = cells.to_device(prog.g).ravel()
    for temp in (300.0, 330.0):
        got = cells.to_device(prog.conductance(time=1e4, temperature=temp)).ravel()
        np.testing.assert_allclose(got, law.conductance(g0, 1e4, temp), rtol=1e-12)
    errors = [rms_error(cells, time=1e4, temperature=t) for t in (280.0, 300.0, 330.0)]
    assert errors[0] < errors[1] < errors[2]


def test_export_and_cell_array_share_the_statistics(rram):
    from cimphys.exports.error_model import noise_bandwidth as _bandwidth
    from cimphys.exports.error_model import tile_device_statistics as _device

    tile = load_circuit("isaac_128x128")
    assert _bandwidth(tile) == BANDWIDTH
    ex = _device(load_device("yakopcic2011_oblea"), tile, 3600.0, 0)
    assert ex.params == rram.statistics.params
    np.testing.assert_array_equal(ex.table["error"], rram.statistics.table["error"])


def test_export_and_cell_array_draw_the_same_cells(rram):
    """Same Generator state -> the export's draw (DeviceStatistics.sample) and program() give the
    same programmed levels (away from the window edges, where the two clip differently)."""
    level = np.random.default_rng(15).uniform(0.1, 0.9, (8, 16))
    exported, alpha = rram.statistics.sample(level, np.random.default_rng(16))
    prog = rram.program(G_MIN + level * (G_MAX - G_MIN), np.random.default_rng(16))
    np.testing.assert_allclose(prog.g, G_MIN + exported * (G_MAX - G_MIN), rtol=1e-12)
    assert alpha == 1.0


# ---------------------------------------------------------------------------- seeds and bad input
def test_same_seed_same_arrays(rram):
    for cells in (pcm_cells(with_tables(load_device("nandakumar2019_pcm"),
                                        variability={"d2d_sigma": 0.05, "p_stuck_on": 0.01})), rram):
        g_t = np.random.default_rng(0).uniform(G_MIN, G_MAX, (3, 8, 8))
        a, b = (cells.program(g_t, np.random.default_rng(11)) for _ in range(2))
        for name in ("g", "faults", "nu", "pulses", "write_energy", "write_time"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or np.array_equal(x, y), name
        np.testing.assert_array_equal(a.conductance(time=1e5), b.conductance(time=1e5))
    again = CellArrayModel.from_card("yakopcic2011_oblea", g_min=G_MIN, g_max=G_MAX, v_read=V_READ,
                                     bandwidth=BANDWIDTH)
    np.testing.assert_array_equal(again.statistics.table["energy"], rram.statistics.table["energy"])


@pytest.mark.parametrize(("call", "names"), [
    (lambda c, p: c.program(np.full((2, 2), 2e-5), np.random.default_rng(0)), ("targets", "2e-05")),
    (lambda c, p: c.program(np.array([[5e-6, np.nan]]), np.random.default_rng(0)), ("targets", "nan")),
    (lambda c, p: c.program(np.full(3, 5e-6), np.random.default_rng(0)), ("targets", "(3,)")),
    (lambda c, p: c.program(np.full((2, 2), 5e-6), 0), ("rng", "int")),
    (lambda c, p: p.conductance(time=-1.0), ("time", "-1")),
    (lambda c, p: p.conductance(time=1.0, temperature=0.0), ("temperature", "0")),
    (lambda c, p: c.read_noise(np.full((2, 2), 5e-6), temperature=-5.0, time=1.0), ("temperature", "-5")),
    (lambda c, p: c.read_noise(np.full((2, 2), 5e-6)), ("time", "None")),
    (lambda c, p: c.read_noise(np.full((2, 2), -5e-6), time=1.0), ("g", "-5e-06")),
])
def test_bad_input_one_clear_error(call, names):
    cells = pcm_cells()
    prog = cells.program(np.full((2, 2), 5e-6), np.random.default_rng(0))
    with pytest.raises(InputError) as info:
        call(cells, prog)
    for name in names:
        assert name in str(info.value)


def test_bad_construction():
    with pytest.raises(InputError, match="g_max"):
        CellArrayModel.from_card("nandakumar2019_pcm", g_min=1e-5, g_max=1e-6, v_read=0.2, bandwidth=1e6)
    with pytest.raises(InputError, match="v_read"):
        CellArrayModel.from_card("nandakumar2019_pcm", g_min=1e-6, g_max=1e-5, v_read=0.0, bandwidth=1e6)
    with pytest.raises(InputError, match="no programming model"):
        CellArrayModel.from_card("sinh_selector_nl1000", g_min=1e-6, g_max=1e-5, v_read=0.2, bandwidth=1e6)
    card = with_tables(load_device("nandakumar2019_pcm"), retention={"g_rest": 0.0, "tau_ref": 1.0})
    with pytest.raises(InputError, match="retention"):
        pcm_cells(card)


# ---------------------------------------------------------------------------- every card key has an effect
def outputs(cells, seed=12):
    g_t = np.random.default_rng(101).uniform(G_MIN, G_MAX, (2, 32, 32))
    prog = cells.program(g_t, np.random.default_rng(seed))
    g = prog.conductance(time=1e5)
    return np.concatenate([prog.g.ravel(), g.ravel(), *(x.ravel() for x in cells.read_noise(g, time=1e5))])


def test_every_pcm_card_key_changes_the_cells():
    """Perturb each parameter and section key of the PCM card (with every section present) and
    see the programmed, aged or read-noise values change; keys listed in CONDITIONAL_KEYS are
    exercised under their condition."""
    sections = {"variability": {"d2d_sigma": 0.05, "c2c_sigma": 0.05, "distribution": "lognormal",
                                "p_stuck_on": 0.01, "p_stuck_off": 0.01},
                "rtn": {"amplitude_rel": 0.05, "tau_low": 1.0, "tau_high": 2.0},
                "endurance": {"cycles": [1.0, 1e6], "g_on": [25e-6, 15e-6], "g_off": [1e-7, 3e-6]}}
    pcm = load_device("nandakumar2019_pcm")
    base_card = with_tables(pcm, **sections)
    base = outputs(pcm_cells(base_card, cycles=1e5))
    # CONDITIONAL_KEYS: g_rel_min and read_q_floor act only beyond the published clips
    changed = {"distribution": "normal", "cycles": [1.0, 1e7], "g_rel_min": 0.5, "read_q_floor": 0.1,
               "nu_mean_max": 0.06, "nu_std_max": 0.01, "read_q_max": 0.05}
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in pcm.parameters.items()}
    for key, value in params.items():
        new = changed.get(key, [1.3 * c for c in value] if isinstance(value, list) else 1.3 * value)
        card = with_tables(base_card, parameters={**params, key: new})
        assert not np.array_equal(outputs(pcm_cells(card, cycles=1e5)), base), key
    for title, table in sections.items():
        for key, value in table.items():
            new = changed.get(key, [1.3 * c for c in value] if isinstance(value, list) else
                              (value * 1.3 if not isinstance(value, str) else value))
            card = with_tables(base_card, **{title: {**table, key: new}})
            assert not np.array_equal(outputs(pcm_cells(card, cycles=1e5)), base), f"{title}.{key}"
    assert set(CONDITIONAL_KEYS) >= {"endurance.cycles", "variability.distribution"}
    assert isinstance(pcm_cells().program(targets(0.5, (1, 2, 2)), np.random.default_rng(0)), ProgrammedCells)
    assert PCMModel.from_card(pcm) == pcm_cells().statistics.model


@pytest.mark.slow
def test_every_dynamic_card_key_changes_the_cells():
    """Each parameter of a dynamic card (Yakopcic: I-V and switching kinetics) not listed in
    CONDITIONAL_KEYS changes what programming gives (window, bounds, write-verify error, pulses
    or energy); Stanford-PKU's ambient t0 is replaced by the characterisation temperature.  ~10 s."""
    card = load_device("yakopcic2011_oblea")

    def signature(c):
        cells = CellArrayModel.from_card(c, g_min=G_MIN, g_max=G_MAX, v_read=V_READ, bandwidth=BANDWIDTH)
        prog = cells.program(np.random.default_rng(101).uniform(G_MIN, G_MAX, (1, 16, 16)), np.random.default_rng(1))
        return np.concatenate([prog.g.ravel(), prog.write_energy.ravel(), prog.pulses.ravel(),
                               cells.statistics.bounds, cells.statistics.window])

    base = signature(card)
    for key, value in card.parameters.items():
        if f"yakopcic.{key}" not in CONDITIONAL_KEYS:
            assert not np.array_equal(signature(card.with_parameters(**{key: 1.2 * value})), base), key
    # the RESET-side keys do act where the conditions say: a negative read voltage
    negative = CellArrayModel.from_card(card.with_parameters(a2=0.2), g_min=G_MIN, g_max=G_MAX, v_read=-V_READ,
                                        bandwidth=BANDWIDTH)
    assert negative.statistics.bounds != CellArrayModel.from_card(card, g_min=G_MIN, g_max=G_MAX, v_read=-V_READ,
                                                                  bandwidth=BANDWIDTH).statistics.bounds
    spku = load_device("guan2012_stanford_pku")
    hot = CellArrayModel.from_card(spku, g_min=G_MIN, g_max=G_MAX, v_read=V_READ, bandwidth=BANDWIDTH,
                                   temperature=350.0)
    assert hot.statistics.model.parameter("t0")[0] == 350.0 and hot.temperature == 350.0


def test_programmed_read_noise_is_the_variance_of_the_pcm_models_read():
    """ProgrammedCells.read_noise evaluates Q_s at the programmed state, as PCMModel.read does:
    the flicker coefficient equals the variance of that model's reads of the same cells."""
    cells = pcm_cells()
    pcm = cells.statistics.model
    prog = cells.program(targets(0.5, (1, 1, 4)), np.random.default_rng(13))
    t = 1e5
    _, _, flicker = prog.read_noise(time=t)
    g_p, nu = cells.to_device(prog.g).ravel(), prog.nu.ravel()
    reads = pcm.read(np.tile(g_p, 200_000), np.tile(nu, 200_000), t, np.random.default_rng(14)).reshape(-1, 4)
    variance = reads.var(axis=0) * ((G_MAX - G_MIN) / pcm.g_max) ** 2  # into the tile window
    # 2e5 Gaussian reads per cell (sigma ~2 % of G: no clip at 0): sample variance within
    # 5 standard errors, 5 sqrt(2 / 2e5) = 1.6 %
    np.testing.assert_allclose(flicker.ravel(), variance, rtol=K_SIGMA * math.sqrt(2 / 200_000))


def test_to_xarray_has_units():
    prog = pcm_cells().program(targets(0.5, (2, 3, 4)), np.random.default_rng(0))
    ds = prog.to_xarray(time=100.0)
    assert ds.g.dims == ("tile", "row", "col") and ds.g.attrs["units"] == "S" and ds.g_t.attrs["units"] == "S"
    assert "pulses" not in ds and ds.nu.attrs["units"] == "1"
