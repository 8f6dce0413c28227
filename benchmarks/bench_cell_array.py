"""Cell array: the cost of characterising a dynamic RRAM card and of programming a stack of tiles.

* Characterisation (``CellArrayModel.from_card``, Yakopcic card, ISAAC-like window): pulse search
  plus the write-verify Monte-Carlo of 512 cells.  Peer: the write-verify Monte-Carlo alone
  (``write_verify`` with the same pulses and targets), the part no characterisation can skip.
  Target: the whole characterisation within 5x the Monte-Carlo (ratio >= 0.2): the pulse search
  (bisections of one-pulse responses on 17 states) may cost up to 4x the Monte-Carlo itself.
* Programming 16 tiles of 128 x 128 PCM cells with d2d variation and stuck-at faults.  Peer: the
  PCM model's own draws on the same device targets (``PCMModel.program`` + ``drift_exponents``),
  what any tile must call.  Target: ours >= 0.4x the peer's speed (the window map, checks, d2d
  and fault draws cost at most 1.5 times as much again).

Figures include no compilation: one warm-up call first.
"""

from __future__ import annotations

import numpy as np

from _common import Record, best_of, main

G_MIN, G_MAX, V_READ, BANDWIDTH = 1e-6, 1e-5, 0.2, 5e6
TARGET_CHARACTERISE = 0.2
TARGET_PROGRAM = 0.4


def run(quick: bool = False) -> list[Record]:
    import tomllib

    from cimphys.cards import card_from_mapping, load_device
    from cimphys.devices import CellArrayModel
    from cimphys.devices.programming import write_verify
    from cimphys.devices.programming_statistics import PROG_MAX_PULSES

    kw = {"g_min": G_MIN, "g_max": G_MAX, "v_read": V_READ, "bandwidth": BANDWIDTH}
    rram = CellArrayModel.from_card("yakopcic2011_oblea", **kw)  # warm-up (Numba caches)
    wv = dict(rram.statistics.params["write_verify"])
    tol = wv.pop("tolerance")
    for key in ("max_pulses", "n_failed", "mean_pulses"):
        wv.pop(key)
    lo, hi = rram.statistics.window
    levels = rram.statistics.table["level"].ravel()

    def monte_carlo():
        return write_verify(rram.statistics.model, lo + (hi - lo) * levels, tol, PROG_MAX_PULSES,
                            np.random.default_rng(0), **wv)

    repeat = 2 if quick else 3
    ours_c = best_of(lambda: CellArrayModel.from_card("yakopcic2011_oblea", **kw), repeat=repeat)
    peer_c = best_of(monte_carlo, repeat=repeat)

    pcm_card = load_device("nandakumar2019_pcm")
    data = tomllib.loads(pcm_card.to_toml())
    data["variability"] = {"d2d_sigma": 0.05, "p_stuck_on": 0.001, "p_stuck_off": 0.001}
    pcm_cells = CellArrayModel.from_card(card_from_mapping(data, "device", "bench", "pcm"), **kw)
    shape = (4 if quick else 16, 128, 128)
    targets = np.random.default_rng(1).uniform(G_MIN, G_MAX, shape)
    device = pcm_cells.to_device(targets)
    pcm = pcm_cells.statistics.model

    def peer_program():
        rng = np.random.default_rng(2)
        return pcm.program(device, rng), pcm.drift_exponents(device, rng)

    ours_p = best_of(lambda: pcm_cells.program(targets, np.random.default_rng(2)), repeat=5)
    peer_p = best_of(peer_program, repeat=5)
    d = rram.describe()
    return [
        Record("characterise Yakopcic (pulse search + 512-cell WV)", ours_c, "write-verify Monte-Carlo alone",
               peer_c, "s", TARGET_CHARACTERISE,
               notes=f"mean pulses {d['mean_pulses']:.1f}, failed {d['n_failed']}"),
        Record(f"program {shape[0]}x128x128 PCM cells (d2d + stuck-at)", ours_p, "PCMModel.program + nu draws",
               peer_p, "s", TARGET_PROGRAM),
    ]


if __name__ == "__main__":
    main(run)
