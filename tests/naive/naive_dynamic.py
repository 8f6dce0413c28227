"""Plain NumPy twins of the dynamic-model kernels, written from the papers' equations.

Each takes a dict of parameters (scalars) and arrays v (V), x (state) and returns arrays.
They share no code with cimphys.devices.
"""

from __future__ import annotations

import numpy as np

K_B_OVER_Q = 8.617333262e-5  # V/K


# --- linear ion drift (Strukov 2008) ------------------------------------------------------
def drift_iv(p, v, w):
    r = p["r_on"] * w / p["d"] + p["r_off"] * (1 - w / p["d"])
    return v / r, 1 / r + 0 * v


def drift_window(p, u, i):
    kind = p.get("window", "none")
    if kind == "none":
        return np.ones_like(u)
    if kind == "joglekar":
        return 1 - (2 * u - 1) ** (2 * p["p"])
    if kind == "biolek":
        stp = (i <= 0).astype(float)  # stp(-i)
        return 1 - (u - stp) ** (2 * p["p"])
    return p.get("j", 1.0) * (1 - ((u - 0.5) ** 2 + 0.75) ** p["p"])


def drift_rate(p, v, w):
    i, _ = drift_iv(p, v, w)
    return p["mu_v"] * p["r_on"] / p["d"] * i * drift_window(p, w / p["d"], i)


# --- TEAM / VTEAM (Kvatinsky 2013, 2015) ------------------------------------------------------
def team_iv(p, v, x):
    u = (x - p["x_on"]) / (p["x_off"] - p["x_on"])
    if p.get("iv", "linear") == "linear":
        r = p["r_on"] + (p["r_off"] - p["r_on"]) * u
    else:
        r = p["r_on"] * np.exp(np.log(p["r_off"] / p["r_on"]) * u)
    return v / r, 1 / r + 0 * v


def _team_window(p, x, drive):
    kind = p.get("window", "biolek")
    if kind == "none":
        return np.ones_like(x)
    if kind == "kvatinsky":
        off = np.exp(-np.exp((x - p["a_off"]) / p["w_c"]))
        on = np.exp(-np.exp(-(x - p["a_on"]) / p["w_c"]))
        return np.where(drive > 0, off, on)
    u = (x - p["x_on"]) / (p["x_off"] - p["x_on"])
    stp = (drive <= 0).astype(float)
    return 1 - np.abs(u - stp) ** (2 * p["p"])


def _team_law(p, drive, x, on, off):
    with np.errstate(invalid="ignore"):
        r_off = p["k_off"] * np.abs(drive / p[off] - 1) ** p["alpha_off"]
        r_on = p["k_on"] * np.abs(drive / p[on] - 1) ** p["alpha_on"]
    f = _team_window(p, x, drive)
    return np.where(drive > p[off], r_off * f, np.where(drive < p[on], r_on * f, 0.0))


def vteam_rate(p, v, x):
    return _team_law(p, v, x, "v_on", "v_off")


def team_rate(p, v, x):
    i, _ = team_iv(p, v, x)
    return _team_law(p, i, x, "i_on", "i_off")


# --- Yakopcic (2011/2013) -------------------------------------------------------------------
def yakopcic_iv(p, v, x):
    a = np.where(v >= 0, p["a1"], p["a2"])
    return a * x * np.sinh(p["b"] * v), a * x * p["b"] * np.cosh(p["b"] * v)


def yakopcic_rate(p, v, x):
    g = np.where(v > p["vp"], p["ap"] * (np.exp(v) - np.exp(p["vp"])),
                 np.where(v < -p["vn"], -p["an"] * (np.exp(-v) - np.exp(p["vn"])), 0.0))
    eta = p.get("eta", 1.0)
    xp, xn = p["xp"], p["xn"]
    f_pos = np.where(x >= xp, np.exp(-p["alphap"] * (x - xp)) * ((xp - x) / (1 - xp) + 1), 1.0)
    f_neg = np.where(x <= 1 - xn, np.exp(p["alphan"] * (x + xn - 1)) * x / (1 - xn), 1.0)
    f = np.where(eta * v > 0, f_pos, f_neg)
    return eta * g * f


# --- Stanford-PKU (Guan 2012, Jiang 2014) ------------------------------------------------------
def pku_iv(p, v, g):
    g = np.clip(g, p["g_min"], p["g_max"])  # the release clips the integrated gap
    pre = p["i0"] * np.exp(-g / p["g0"])
    return pre * np.sinh(v / p["v0"]), pre * np.cosh(v / p["v0"]) / p["v0"]


def pku_rate(p, v, g):
    i, _ = pku_iv(p, v, g)
    temp = p.get("t0", 298.0) + np.abs(v * i) * p.get("r_th", 2.1e3)
    kt = K_B_OVER_Q * temp
    g = np.clip(g, p["g_min"], p["g_max"])
    gamma = np.where(v < 0, p.get("gamma_reset", 16.0), p["gamma0"]) - p["beta"] * (g / p["g1"]) ** 3
    # F_min: no motion below it; a C1 smoothstep over a relative width f_min_width around it
    width = p.get("f_min_width", 0.0)
    rel = gamma * np.abs(v) / p["t_ox"] / p.get("f_min", 1.4e9) - 1.0
    s = np.clip(rel / width + 0.5, 0.0, 1.0) if width > 0 else (rel >= 0).astype(float)
    step = s * s * (3 - 2 * s)
    return -p["vel0"] * np.exp(-p["ea"] / kt) * np.sinh(gamma * p["a0"] / p["t_ox"] * v / kt) * step


def central_difference(fn, v, h=1e-6):
    """dI/dV by central differences (V step h)."""
    return (fn(v + h) - fn(v - h)) / (2 * h)
