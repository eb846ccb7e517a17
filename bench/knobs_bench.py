"""Knobs on the twin: an experiment's and a sweep's time, and the sizes of the gates' effects (2-core CPU).

- One intervention run, 50 DDIM steps with guidance 3, its baseline included (`knobs.run.experiment`: the baseline
  on a second thread beside the knob run, one torch thread each): target <= 2 s (median). Measured in turn with
  it: the same two pictures as two lanes of one batch (`sample_pair`, as a checkpoint's job runs them), one after
  the other on one thread, and a plain 50-step generation.
- The block-ablation sweep: every top-level block of the twin's U (13: six input blocks, the middle block, six
  output blocks; SD 1.x has 25) removed in turn over 8 seeds, plus the baseline: target <= 60 s, at 50 steps and
  at the sweep's default 20.
- Evidence: on 32 seeds (one caption each, from the world's grammar; 20 steps), how many pictures change when
  every skip is cut, or the middle block is removed: SSIM under 0.95 or another reading. Gate: >= 80 %.
- DeepCache: the share of UNet MACs saved (from the trace) against the mean SSIM to the baseline, for every k.

Run: `python -m bench.knobs_bench`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import machine, table

CAPTION = "a large red circle at the top left on a black background"


def _timing_rows() -> list[tuple[str, str, str]]:
    from sdunet_core.twin import shipped
    from sdunet_core.twin.knobs import parse_knobs
    from sdunet_core.twin.knobs.run import experiment, sample, sample_pair
    from sdunet_core.twin.knobs.sweep import sweep
    from sdunet_core.twin.sampling import generate, one_thread

    model = shipped().model
    knobs = parse_knobs([{"kind": "cut_skip", "blocks": "all"}], prompt=CAPTION, steps=50, config=model.unet.config)

    def one_after_the_other() -> None:
        sample(model, [CAPTION], [0], steps=50)
        sample(model, [CAPTION], [0], steps=50, knobs=knobs, keep_steps=True)

    timed = {
        "beside": lambda: experiment(model, CAPTION, 0, knobs, steps=50, guidance=3.0),
        "batched": lambda: sample_pair(model, CAPTION, 0, knobs, steps=50, guidance=3.0),
        "apart": one_after_the_other,
        "plain": lambda: generate(model, CAPTION, steps=50, guidance=3.0, keep_steps=False),
    }
    rows = []
    with one_thread():
        # In turn, round after round, so that a burst of load elsewhere falls on each alike.
        times: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(5):
            for name, fn in timed.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        med = {name: float(np.median(v)) for name, v in times.items()}
        rows += [("one intervention run, 50 steps, guidance 3, baseline included (two threads)",
                  f"{med['beside']:.2f} s", "<= 2 s"),
                 ("  the same two pictures as two lanes of one batch", f"{med['batched']:.2f} s", "-"),
                 ("  the same two pictures one after the other, one thread", f"{med['apart']:.2f} s", "-"),
                 ("  a plain 50-step generation, guidance 3, beside them", f"{med['plain']:.2f} s", "-")]  # fmt: skip
        for steps in (20, 50):
            t0 = time.perf_counter()
            sweep(model, [CAPTION], list(range(8)), steps=steps, what="blocks")
            took = time.perf_counter() - t0
            rows.append((f"block sweep: 13 blocks x 8 seeds + baseline, {steps} steps", f"{took:.1f} s", "<= 60 s"))
    return rows


def _evidence_rows() -> list[tuple[str, str, str]]:
    from sdunet_core.twin import shipped, world
    from sdunet_core.twin.knobs import compare, parse_knobs, sample
    from sdunet_core.twin.knobs.run import macs_report, same_reading
    from sdunet_core.twin.report import reading_dict
    from sdunet_core.twin.sampling import one_thread, to_uint8

    model = shipped().model
    seeds = list(range(900, 932))
    prompts = [world.caption(world.sample_scene(s, two=False)) for s in seeds]
    rows = []
    with one_thread():
        base = sample(model, prompts, seeds, steps=20).images
        specs = [("every skip cut (zeros)", {"kind": "cut_skip", "blocks": "all"}),
                 ("every skip replaced by its mean", {"kind": "cut_skip", "blocks": "all", "mode": "mean"}),
                 ("middle block removed", {"kind": "scale", "blocks": "M00", "weight": 0})]  # fmt: skip
        for name, spec in specs:
            knobs = parse_knobs([spec], prompt=prompts[0], steps=20, config=model.unet.config)
            cut = sample(model, prompts, seeds, steps=20, knobs=knobs).images
            ssims, changed, moved = [], 0, 0
            for i in range(len(seeds)):
                cmp = compare(to_uint8(base[i : i + 1]), to_uint8(cut[i : i + 1]))
                other = not same_reading(reading_dict(cmp.baseline), reading_dict(cmp.result))
                ssims.append(cmp.ssim)
                changed += other
                moved += other or cmp.ssim < 0.95
            rows.append((f"{name}: pictures changed (SSIM < 0.95 or another reading) / reading changed / mean SSIM",
                         f"{moved / 32:.0%} / {changed / 32:.0%} / {np.mean(ssims):.3f}", ">= 80 %"))  # fmt: skip
        for every in (2, 3, 5, 10):
            knobs = parse_knobs([{"kind": "cache", "every": every}], prompt=prompts[0], steps=20,
                                config=model.unet.config)  # fmt: skip
            run = sample(model, prompts, seeds, steps=20, knobs=knobs)
            saved = macs_report(run)["saved_fraction"]
            s = np.mean([compare(to_uint8(base[i : i + 1]), to_uint8(run.images[i : i + 1])).ssim for i in range(32)])
            rows.append((f"cache every {every} (20 steps): MACs saved / mean SSIM to the baseline",
                         f"{saved:.0%} / {s:.3f}", "-"))  # fmt: skip
    return rows


def run() -> list[tuple[str, str, str]]:
    return _timing_rows() + _evidence_rows()


if __name__ == "__main__":
    print(f"Machine: {machine()}.\n")
    print(table(run()))
