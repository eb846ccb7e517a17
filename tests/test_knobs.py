"""Knobs on the shipped twin: every kind at its neutral value is the baseline bit for bit, and removing the skips
or the middle block changes most pictures (the direction only; the sizes go to the README from the bench)."""

from __future__ import annotations

import pytest
import torch

from sdunet_core.twin import shipped, world
from sdunet_core.twin.knobs import KnobError, compare, parse_knobs, sample
from sdunet_core.twin.knobs.hooks import macs_per_call
from sdunet_core.twin.knobs.run import same_reading, sample_beside, sample_pair
from sdunet_core.twin.report import reading_dict
from sdunet_core.twin.sampling import generate, one_thread, to_uint8

PROMPT = "a large red circle at the top left on a black background"
STEPS = 8


@pytest.fixture(scope="module")
def model():
    return shipped().model


@pytest.fixture(scope="module")
def baseline(model):
    with one_thread():
        return sample(model, [PROMPT], [3], steps=STEPS).images


NEUTRAL = [
    {"kind": "scale", "blocks": "IN00-OUT05", "weight": 1.0},
    {"kind": "cut_skip", "blocks": []},
    {"kind": "token_weight", "word": "red", "weight": 1.0},
    {"kind": "swap_prompt", "prompt": PROMPT, "from_step": 2},
    {"kind": "cache", "every": 1},
    {"kind": "guidance", "scale": 3.0},
    {"kind": "negative", "prompt": ""},
]
CHANGING = [
    {"kind": "scale", "blocks": "IN00-OUT05", "weight": 0.5},
    {"kind": "cut_skip", "blocks": ["output_blocks.5"], "mode": "mean"},
    {"kind": "token_weight", "word": "red", "weight": 3.0},
    {"kind": "swap_prompt", "prompt": "a small blue square", "from_step": 2},
    {"kind": "cache", "every": 3},
    {"kind": "guidance", "scale": 7.0},
    {"kind": "negative", "prompt": "a red circle"},
]


def test_the_loop_without_knobs_is_generate(model, baseline):
    with one_thread():
        plain = generate(model, PROMPT, seed=3, steps=STEPS, keep_steps=False).image
    assert torch.equal(baseline, plain)


@pytest.mark.parametrize("spec", NEUTRAL, ids=[s["kind"] for s in NEUTRAL])
def test_every_knob_at_its_neutral_value_is_the_baseline_bit_for_bit(model, baseline, spec):
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        assert torch.equal(sample(model, [PROMPT], [3], steps=STEPS, knobs=knobs).images, baseline)


@pytest.mark.parametrize("spec", CHANGING, ids=[s["kind"] for s in CHANGING])
def test_every_knob_away_from_neutral_changes_the_picture(model, baseline, spec):
    # The counterpart of the identity test: a hook that never fired would pass that one too.
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        assert not torch.equal(sample(model, [PROMPT], [3], steps=STEPS, knobs=knobs).images, baseline)


PAIRED = [s for s in NEUTRAL if s["kind"] != "cache"]  # the cache cannot skip for half a batch: it runs alone


@pytest.mark.parametrize("spec", PAIRED, ids=[s["kind"] for s in PAIRED])
def test_in_one_batch_a_neutral_knob_gives_the_baseline_lane_bit_for_bit(model, spec):
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        base, run = sample_pair(model, PROMPT, 3, knobs, steps=STEPS)
    assert torch.equal(base.images, run.images)


# A row's numbers depend on its batch's size through float rounding only (measured: at most 1.2e-5 after 8 steps,
# pixel values in -1..1); 1e-3 is an eighth of one level of the 0..255 picture.
PAIR_TOLERANCE = 1e-3


@pytest.mark.parametrize("spec", [s for s in CHANGING if s["kind"] != "cache"], ids=lambda s: s["kind"])
def test_in_one_batch_the_knob_lane_is_the_separate_run_to_rounding(model, baseline, spec):
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        base, run = sample_pair(model, PROMPT, 3, knobs, steps=STEPS)
        alone = sample(model, [PROMPT], [3], steps=STEPS, knobs=knobs, keep_steps=True)
    assert (base.images - baseline).abs().max() < PAIR_TOLERANCE
    assert (run.images - alone.images).abs().max() < PAIR_TOLERANCE
    assert not torch.equal(run.images, base.images)  # the knob acted on its lane and left the baseline's alone
    assert len(run.steps) == STEPS and (run.steps[-1].x0 - alone.steps[-1].x0).abs().max() < PAIR_TOLERANCE


@pytest.mark.parametrize("spec", CHANGING, ids=[s["kind"] for s in CHANGING])
def test_beside_each_picture_is_the_separate_run_bit_for_bit(model, baseline, spec):
    # The experiment's way: the baseline on a second thread while the knob run's hooks are on the shared UNet. The
    # hooks must act on the knob run's thread only, and neither picture may differ from its run alone in one bit.
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        base, run = sample_beside(model, PROMPT, 3, knobs, steps=STEPS)
        alone = sample(model, [PROMPT], [3], steps=STEPS, knobs=knobs, keep_steps=True)
    assert torch.equal(base.images, baseline)
    assert torch.equal(run.images, alone.images)
    assert len(run.steps) == STEPS and torch.equal(run.steps[-1].x0, alone.steps[-1].x0)
    assert not torch.equal(run.images, base.images)


@pytest.mark.parametrize("spec", NEUTRAL, ids=[s["kind"] for s in NEUTRAL])
def test_beside_a_neutral_knob_gives_the_baseline_bit_for_bit(model, baseline, spec):
    knobs = parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    with one_thread():
        base, run = sample_beside(model, PROMPT, 3, knobs, steps=STEPS)
    assert torch.equal(base.images, baseline) and torch.equal(run.images, baseline)


def test_hooks_are_removed_after_a_run(model):
    knobs = parse_knobs([{"kind": "scale", "blocks": "M00", "weight": 0}], prompt=PROMPT, steps=2,
                        config=model.unet.config)  # fmt: skip
    with one_thread():
        sample(model, [PROMPT], [0], steps=2, knobs=knobs)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.unet.modules())


def test_the_cache_runs_shallow_steps_between_full_ones_and_counts_the_macs_saved(model):
    knobs = parse_knobs([{"kind": "cache", "every": 3}], prompt=PROMPT, steps=9, config=model.unet.config)
    with one_thread():
        run = sample(model, [PROMPT], [0], steps=9, knobs=knobs)
    assert (run.full_calls, run.shallow_calls) == (3, 6)  # steps 0, 3, 6 full
    full, shallow = macs_per_call()
    assert 0 < shallow < full / 2


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"kind": "melt"}, "interventions[0].kind", "not a kind"),
        ({"kind": "scale", "blocks": "IN99", "weight": 0}, "interventions[0].blocks", "not a block of this model"),
        ({"kind": "cut_skip", "blocks": ["input_blocks.1"]}, "interventions[0].blocks[0]", "takes no skip"),
        ({"kind": "token_weight", "word": "blue", "weight": 2}, "interventions[0].word", "not in the caption"),
        ({"kind": "token_weight", "word": "red", "weight": 9}, "interventions[0].weight", "0..3"),
        ({"kind": "swap_prompt", "prompt": "a cat"}, "interventions[0].prompt", "'cat' is not in"),
        ({"kind": "cache", "every": 0}, "interventions[0].every", "1..8"),
        ({"kind": "scale", "blocks": "M00", "to_step": 99}, "interventions[0].to_step", "0..7"),
        ({"kind": "scale", "blocks": "M00", "colour": 1}, "interventions[0].colour", "not a field of scale"),
    ],
)
def test_a_bad_knob_names_its_field(model, spec, field, words):
    with pytest.raises(KnobError) as caught:
        parse_knobs([spec], prompt=PROMPT, steps=STEPS, config=model.unet.config)
    assert caught.value.field == field and words in caught.value.reason


def _evidence(model, spec):
    seeds = list(range(900, 932))
    prompts = [world.caption(world.sample_scene(s, two=False)) for s in seeds]
    knobs = parse_knobs([spec], prompt=prompts[0], steps=10, config=model.unet.config)
    with one_thread():
        base = sample(model, prompts, seeds, steps=10).images
        cut = sample(model, prompts, seeds, steps=10, knobs=knobs).images
    changed = 0
    for i in range(len(seeds)):
        cmp = compare(to_uint8(base[i : i + 1]), to_uint8(cut[i : i + 1]))
        moved = cmp.ssim < 0.95 or not same_reading(reading_dict(cmp.baseline), reading_dict(cmp.result))
        changed += moved
    return changed / len(seeds)


@pytest.mark.parametrize(
    "spec",
    [{"kind": "cut_skip", "blocks": "all"}, {"kind": "scale", "blocks": "M00", "weight": 0}],
    ids=["skips", "middle"],
)
def test_removing_the_skips_or_the_middle_block_changes_most_pictures(model, spec):
    # Measurably: SSIM under 0.95 or another reading, on most of 32 seeds (the bench reports the sizes).
    assert _evidence(model, spec) > 0.5
