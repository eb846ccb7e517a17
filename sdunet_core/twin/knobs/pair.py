"""A baseline and its knob run from one noise, as a loop that advances one step at a time.

`PairRun` serves the twin (`run.sample_pair`) and a checkpoint's model alike
(sdunet_core.activations.interventions): it needs a UNet, a caption encoder, a scheduler and the noise. Every knob
but the cache runs the two pictures as two lanes of one batch (sampling.denoise: one UNet call a step for both),
the hooks acting on the knob lane's rows only and each lane with its own captions and guidance. The cache replaces
whole UNet calls by shallow ones, which cannot be done for half a batch: with a cache knob the baseline runs first
on its own, then the knob run, exactly as `run.sample` runs each.

The hooks are on the UNet only while a step runs (`advance`), so whatever else uses the same model between two
steps (a capture in the same process) sees it untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..sampling import Denoised, Lane, denoise_steps
from .hooks import Knobs
from .specs import Knob

Encode = Callable[[str], torch.Tensor]  # one caption -> its context [1, tokens, width]


class Captions:
    """What one lane of pictures sees on each step under its knobs: the captions (swapped from a step on, or not),
    the negatives, the guidance scale. Every caption's context is encoded on its own and kept, so a knob that
    changes nothing (a caption swapped for itself) gives the same numbers."""

    def __init__(self, encode: Encode, state: Knobs, prompts: list[str], negative: str, guidance: float,
                 steps: int) -> None:  # fmt: skip
        self.encode, self.state, self.prompts, self.negative = encode, state, prompts, negative
        self.contexts: dict[str, torch.Tensor] = {}
        self.scales = []
        for i in range(steps):
            state.step = i
            found = state.active("guidance")
            self.scales.append(found[-1].scale if found else guidance)

    def halves(self) -> tuple[bool, bool]:
        """Whether any step needs the negatives' rows, the captions' rows (fixed for the run: the rows stay put)."""
        return any(g != 1.0 for g in self.scales), any(g != 0.0 for g in self.scales)

    def _ctx(self, caption: str) -> torch.Tensor:
        if caption not in self.contexts:
            self.contexts[caption] = self.encode(caption)
        return self.contexts[caption]

    def lane(self, i: int, uncond: bool, cond: bool) -> Lane:
        self.state.step = i
        n = len(self.prompts)
        swapped, negatived = self.state.active("swap_prompt"), self.state.active("negative")
        captions = [swapped[-1].prompt] * n if swapped else self.prompts
        negatives = [negatived[-1].prompt if negatived else self.negative] * n
        rows = (negatives if uncond else []) + (captions if cond else [])
        return Lane(n, torch.cat([self._ctx(c) for c in rows]), uncond, cond, self.scales[i])


def cond_rows(uncond: bool, cond: bool, n: int, start: int = 0) -> slice:
    """The rows of a lane (starting at `start`) that carry the caption: its second half with guidance, else all
    or none. A token_weight knob reweights the word there."""
    if uncond and cond:
        return slice(start + n, start + 2 * n)
    return slice(start, start + n) if cond else slice(0)


def batchable(knobs: list[Knob]) -> bool:
    """Whether the baseline can ride in the knob run's batch (every knob but the cache acts on chosen rows)."""
    return not any(k.kind == "cache" for k in knobs)


class PairRun:
    """The baseline (lane 0) and the knob run (lane 1) of one noise [1, C, H, W]; `advance()` runs one step."""

    def __init__(self, unet: nn.Module, encode: Encode, make_scheduler: Callable[[], Any], noise: torch.Tensor, *,
                 prompt: str, negative: str, guidance: float, steps: int, knobs: list[Knob]) -> None:  # fmt: skip
        self.state = Knobs(unet, knobs)  # type: ignore[arg-type]
        self.plain = Knobs(unet, [])  # type: ignore[arg-type]
        base = Captions(encode, self.plain, [prompt], negative, guidance, steps)
        knob = Captions(encode, self.state, [prompt], negative, guidance, steps)
        self.batched = batchable(knobs)
        self.loops: list[tuple[Iterator[Denoised], Knobs]] = []
        if self.batched:
            # One row layout for both lanes (the union of what either needs), so a lane's rows stay put.
            (bu, bc), (ku, kc) = base.halves(), knob.halves()
            uncond, cond = bu or ku, bc or kc
            self.rows = int(uncond) + int(cond)
            self.state.rows = slice(self.rows, 2 * self.rows)  # the knob lane's rows: the baseline's stay as they are
            self.state.cond_rows = cond_rows(uncond, cond, 1, start=self.rows)
            sched = make_scheduler()
            x = noise.repeat(2, 1, 1, 1) * sched.init_noise_sigma
            lanes = lambda i: [base.lane(i, uncond, cond), knob.lane(i, uncond, cond)]  # noqa: E731
            self.loops.append((denoise_steps(sched, x, lanes, self.state.unet_call, keep=1), self.state))
            self.base_rows = self.rows
        else:
            (bu, bc), (ku, kc) = base.halves(), knob.halves()
            self.base_rows, self.rows = int(bu) + int(bc), int(ku) + int(kc)
            self.state.cond_rows = cond_rows(ku, kc, 1)
            s1, s2 = make_scheduler(), make_scheduler()
            first = denoise_steps(s1, noise * s1.init_noise_sigma, lambda i: [base.lane(i, bu, bc)],
                                  self.plain.unet_call)  # fmt: skip
            second = denoise_steps(s2, noise * s2.init_noise_sigma, lambda i: [knob.lane(i, ku, kc)],
                                   self.state.unet_call, keep=0)  # fmt: skip
            self.loops += [(first, self.plain), (second, self.state)]
        self.total = steps * len(self.loops)
        self.done = 0
        self.latest: list[Denoised | None] = [None] * len(self.loops)
        self._at = 0  # the loop running now

    def advance(self) -> bool:
        """Run the next step (the hooks on only meanwhile); False once both pictures are done."""
        while self._at < len(self.loops):
            loop, state = self.loops[self._at]
            with torch.inference_mode(), state.installed():
                latest = next(loop, None)
            if latest is None:  # this loop is over: go on with the next
                self._at += 1
                continue
            self.latest[self._at] = latest
            self.done += 1
            return True
        return False

    def finish(self) -> tuple[Denoised, Denoised]:
        """Run what is left; (the baseline's loop, the knob run's loop: its picture's steps kept)."""
        while self.advance():
            pass
        if self.batched:
            both = self.latest[0]
            assert both is not None
            base = Denoised(both.images[:1], [], both.unet_calls)
            return base, Denoised(both.images[1:], both.steps, both.unet_calls)
        base, knob = self.latest
        assert base is not None and knob is not None
        return base, knob
