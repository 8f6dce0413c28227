"""Write ``yakopcic_sweeps.csv``: SYNTHETIC I-V sweeps for ``examples/01_characterise_a_device.py``.

Not measured data.  Two sine sweeps (1.2 V and 1.0 V amplitude, 1 kHz) of a Yakopcic device
whose ``a1``, ``a2`` and ``ap`` differ from the shipped ``yakopcic2011_oblea`` card, integrated
by cimphys from the state 0.5 and written as a parameter analyser would (units in the header,
current in mA, time in ms), with seeded Gaussian current noise of 1 % of the rms current.  The
notebook then has a known answer to recover.  Run from anywhere:

    python examples/data/make_yakopcic_sweeps.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cimphys
from cimphys.devices import Yakopcic, integrate, pwl

TRUTH = {"a1": 0.2, "a2": 0.14, "ap": 5000.0}  # what the notebook's fit should find
NOISE = 0.01  # Gaussian current noise, fraction of the rms current of each sweep
SEED = 0
OUT = Path(__file__).with_name("yakopcic_sweeps.csv")


def main() -> Path:
    rng = np.random.default_rng(SEED)
    model = Yakopcic.from_card(cimphys.load_device("yakopcic2011_oblea").with_parameters(**TRUTH))
    t = np.linspace(0.0, 1e-3, 121)
    lines = ["# SYNTHETIC data (not measured): a Yakopcic device integrated by cimphys, 1 % seeded noise",
             f"# truth: {', '.join(f'{k} = {v}' for k, v in TRUTH.items())}; made by {Path(__file__).name}",
             "sweep,Time (ms),Voltage (V),Current (mA)"]
    for k, amp in enumerate((1.2, 1.0), start=1):
        v = amp * np.sin(2 * np.pi * t / 1e-3)
        i = integrate(model, pwl(t, v), 0.5, rtol=1e-9, atol=1e-12).current.values[:, 0]
        i = i + NOISE * np.sqrt(np.mean(i**2)) * rng.standard_normal(i.shape)
        lines += [f"{k},{tt * 1e3:.6g},{vv:.6g},{ii * 1e3:.6g}" for tt, vv, ii in zip(t, v, i)]
    OUT.write_text("\n".join(lines) + "\n")
    return OUT


if __name__ == "__main__":
    print(f"wrote {main()}")
