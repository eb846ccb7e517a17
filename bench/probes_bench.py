"""The probes' speed on this CPU (shipped twin, one torch thread and one BLAS thread as served).

- Every point of the twin (@all, 106) probed for all five targets on 512 pictures at one timestep: target <= 60 s
  (median of REPEATS runs), with its split into forwards (one per batch of 64 pictures, every point hooked at once)
  and classifier fits (a probe and five shuffled controls per point and target);
- PCK over 32 generated pairs for the block outputs (@outputs).

Run: `python -m bench.probes_bench [repeats]`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.common import machine, table

REPEATS = 3


def run(repeats: int = REPEATS) -> list[tuple[str, str, str]]:
    from sdunet_core.probes import ProbeSpec
    from sdunet_core.probes import run as probe_run
    from sdunet_core.probes.correspondence import pck
    from sdunet_core.probes.run import chance_gap, model_for
    from sdunet_core.twin.sampling import one_thread

    spec = ProbeSpec(["@all"], ["shape", "colour", "size", "position", "background"], [250], n_images=512)
    results = [probe_run(spec) for _ in range(repeats)]
    totals = [r["timings"]["total_s"] for r in results]
    last = results[-1]
    with one_thread():
        started = time.perf_counter()
        pck(model_for("shipped"), ["@outputs"], 261, 32)
        pck_s = time.perf_counter() - started
    best = {r["target"]: f"{r['accuracy']:.3f}" for r in last["best"]}
    return [
        (f"@all ({len(last['points'])} points) x 5 targets, 512 pictures, t = 250 (median of {repeats})",
         f"{statistics.median(totals):.1f} s", "<= 60 s"),
        ("  of which forwards (8 batches of 64)", f"{last['timings']['forward_s']:.1f} s", "-"),
        ("  of which classifier fits (6 per point and target)", f"{last['timings']['fit_s']:.1f} s", "-"),
        ("best held-out accuracy: colour / shape", f"{best['colour']} / {best['shape']}", ">= 0.95 / >= 0.85"),
        ("largest distance of a shuffled control from chance", f"{chance_gap(last['rows']):.3f}", "<= 0.10"),
        ("PCK@0.1 over 32 pairs, @outputs (25 points), t = 261", f"{pck_s:.1f} s", "-"),
    ]  # fmt: skip


if __name__ == "__main__":
    print(f"Machine: {machine()}.\n")
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else REPEATS)))
