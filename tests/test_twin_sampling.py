"""The twin's loop: diffusers' steps exactly, x̂₀ as SD defines it, one seed one picture; a smoke run."""

from __future__ import annotations

import pytest
import torch

from sdunet_core.twin import shipped
from sdunet_core.twin.model import Twin, alphas_cumprod
from sdunet_core.twin.sampling import generate, one_thread, scheduler
from sdunet_core.twin.train import TrainConfig, train


@pytest.fixture(scope="module")
def twin() -> Twin:
    return shipped().model


@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_each_step_is_the_schedulers_step_on_the_same_inputs(twin: Twin, sampler: str):
    with one_thread():
        gen = generate(twin, "a small blue square in the center", seed=7, steps=12, guidance=2.5, sampler=sampler)
    for i in range(len(gen.steps) - 1):
        fresh = scheduler(sampler, twin.schedule)  # type: ignore[arg-type]
        fresh.set_timesteps(12)
        if sampler == "euler":
            fresh.set_begin_index(i)
        step = gen.steps[i]
        expected = fresh.step(step.output, fresh.timesteps[i], step.sample).prev_sample
        assert torch.allclose(expected, gen.steps[i + 1].sample, atol=1e-6, rtol=0)
    # SD's spacing: DDIM "leading" (1000 // 12 = 83 apart, plus the offset of 1: 914 first), Euler "linspace" (999).
    assert gen.steps[0].t == (999 if sampler == "euler" else 11 * 83 + 1)


def test_x0_is_what_the_noise_prediction_implies(twin: Twin):
    abar = alphas_cumprod(twin.schedule)
    with one_thread():
        gen = generate(twin, "a red circle above a green triangle", seed=3, steps=10, guidance=3.0)
    for step in gen.steps:
        a = abar[step.t]
        # SD's x_t = sqrt(ᾱ) x₀ + sqrt(1 - ᾱ) ε, written without a division (ᾱ is 0 at t = 999 on a zero-SNR schedule).
        assert torch.allclose(a.sqrt() * step.x0 + (1 - a).sqrt() * step.eps, step.x_t, atol=1e-4)


def test_guidance_one_uses_the_caption_alone_and_runs_one_pass_a_step(twin: Twin):
    with one_thread():
        gen = generate(twin, "a purple triangle", seed=1, steps=5, guidance=1.0)
        calls = []
        generate(twin, "a purple triangle", seed=1, steps=5, guidance=3.0,
                 unet_call=lambda i, t, x, tt, ctx: calls.append(x.shape[0]) or twin.unet(x, tt, ctx))  # fmt: skip
    assert gen.unet_calls == 5
    assert calls == [2] * 5  # guidance: the empty and the given caption in one batch of two


def test_the_same_seed_gives_the_same_picture_bit_for_bit(twin: Twin):
    with one_thread():
        a = generate(twin, "a large yellow circle at the bottom left", seed=11, steps=20)
        b = generate(twin, "a large yellow circle at the bottom left", seed=11, steps=20)
        c = generate(twin, "a large yellow circle at the bottom left", seed=12, steps=20)
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)


def test_a_smoke_run_of_the_recipe_lowers_the_loss(tmp_path):
    record = train(
        TrainConfig(steps=40, batch=8, warmup=5, log_every=10, checkpoint_every=1000), tmp_path / "t.safetensors"
    )
    losses = [row["loss"] for row in record["loss_curve"]]
    assert len(losses) == 4 and losses[-1] < 0.6 * losses[0]
    assert (tmp_path / "t.safetensors").is_file() and (tmp_path / "t.json").is_file()
    assert record["steps_done"] == 40 and record["versions"]["torch"] == torch.__version__
