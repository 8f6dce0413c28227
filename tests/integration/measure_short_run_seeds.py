"""Measure the spread over seeds of the short MiniLM run (tests/integration/test_layers_run.py).

Prints, per seed, the worst and the mean sentence cosine of ``test_minilm_short_analog_run``'s
configuration, then their mean and standard deviation over the seeds: the numbers its bounds
are derived from.  Run: ``python tests/integration/measure_short_run_seeds.py 8`` (about 30 s of
CPU per seed).
"""

from __future__ import annotations

import statistics
import sys

from cimphys.layers import CimConfig, run_model


def main(n_seeds: int = 8) -> None:
    cfg = CimConfig.from_card("isaac_128x128", rows=256, cols=256, r_wire=0.0)
    calibration = ["The weather was calm and clear all day.", "He sold his old car to a neighbour."]
    worst, mean = [], []
    for seed in range(n_seeds):
        cos = run_model(sentences=4, config=cfg, seed=seed, calibration=calibration,
                        use_cache=False).embedding_cosine.values
        worst.append(float(cos.min()))
        mean.append(float(cos.mean()))
        print(f"seed {seed}: worst {worst[-1]:.5f} mean {mean[-1]:.5f}", flush=True)
    for name, v in (("worst", worst), ("mean", mean)):
        print(f"{name}: mean {statistics.mean(v):.4f} sd {statistics.stdev(v):.4f} range {min(v):.4f}-{max(v):.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
