"""The twin in the activation views: an `Explorer` over the shipped weights, its tokenizer and its text encoder.

The capture code is the same as for any checkpoint; three things differ. The prompt is split into the twin's
words (an unknown word is an input error on `prompt` naming the word and the vocabulary), the context is 16
tokens of the twin's text encoder, and a picture goes in as its own pixels in [-1, 1] (the twin has no VAE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..activations.components import Components
from ..activations.conditioning import InputError
from ..presets import load_preset
from .model import PRESET, shipped
from .text import MAX_TOKENS

if TYPE_CHECKING:
    from ..activations.session import Explorer


def tokenize(prompt: str) -> tuple[list[int], list[str]]:
    """(ids, token texts) of `<start> words <end>`, not padded; InputError on `prompt` for what it cannot say."""
    tok = shipped().model.tokenizer
    try:
        words = tok.check(prompt)
    except ValueError as exc:  # an UnknownWord names the word and the vocabulary
        raise InputError("prompt", str(exc)) from None
    ids = [tok.start, *(tok.ids[w] for w in words), tok.end]
    return ids, [tok.tokens[i] for i in ids]


class TwinText:
    """The twin's text encoder behind the interface the capture uses for a checkpoint's CLIP towers."""

    family = PRESET

    @torch.inference_mode()
    def encode(self, prompt: str) -> tuple[torch.Tensor, None]:
        tokenize(prompt)  # the input error first
        return shipped().model.context([prompt]), None


def twin_explorer(cls: type[Explorer]) -> Explorer:
    twin = shipped().model
    explorer = cls(twin.unet.config, twin.unet, Components(PRESET, None, TwinText()), random_weights=False)  # type: ignore[arg-type]
    explorer.context_tokens = MAX_TOKENS
    explorer.tokenize = tokenize
    explorer.latent_source = "pixels"
    explorer.schedule = twin.schedule
    explorer.default_sample = tuple(load_preset(PRESET).sample_size)  # type: ignore[assignment]
    return explorer
