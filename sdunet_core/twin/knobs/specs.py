"""Intervention specs: what one knob changes in the twin's forward pass, and on which steps, checked and typed.

A request's `interventions` is a list of plain objects, each with a `kind` and optional `from_step` / `to_step`
(the first and last step, counted from 0, on which it acts; both inclusive, default: every step):

- `scale`: `{"blocks": <a block-weight spec: "IN04-OUT05", "MIDD", a vector>, "weight": w}` multiplies the output
  of every block the spec selects (weight 1 in the spec) by w; 0 ablates it. A spec's own weights other than 0 / 1
  (a vector) are multiplied by w too. Block-weight tools scale a LoRA's *delta* per block; this scales the block;
- `cut_skip`: `{"blocks": "all" | ["output_blocks.N", ...], "mode": "zero" | "mean"}` replaces the skip that
  output block concatenates by zeros, or by its per-channel spatial mean (what is kept: each channel's level;
  what goes: where things are);
- `token_weight`: `{"word": "red", "weight": x}` (x in 0..3) multiplies how much every cross-attention layer
  takes from the word's token (prompt-to-prompt's reweighting, applied to the caption's branch only);
- `swap_prompt`: `{"prompt": "..."}` the caption the UNet sees from `from_step` on (prompt-to-prompt's idea:
  the early steps settle the layout, the late ones the details);
- `cache`: `{"every": k}` runs the whole UNet every k-th step and, in between, only its outermost input and output
  blocks, reusing the deep features of the last full step (DeepCache's idea);
- `guidance`: `{"scale": g}` the classifier-free guidance scale on these steps;
- `negative`: `{"prompt": "..."}` the caption guidance moves away from on these steps.

A bad spec is a `KnobError` naming the field as the API reports it (`interventions[1].blocks`). Captions and
words are checked by a `Words`: the twin's vocabulary by default; a checkpoint's model brings CLIP's
(sdunet_core.activations.interventions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ...model.config import ConfigError, UNetConfig
from ...names.block_weights import parse_block_weights
from ..text import WordTokenizer

KINDS = ("scale", "cut_skip", "token_weight", "swap_prompt", "cache", "guidance", "negative")
MAX_INTERVENTIONS = 8
MAX_WEIGHT = 4.0  # a block's output scaled past this only explodes; the page's slider goes to 2
MAX_TOKEN_WEIGHT = 3.0
MAX_GUIDANCE = 20.0


class KnobError(ValueError):
    """An intervention the twin cannot run: the field (as the API names it) and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Knob:
    """One intervention: its kind, its parameters (checked), and the steps it acts on."""

    kind: str
    from_step: int = 0
    to_step: int | None = None  # None: to the last step
    # scale: block path -> factor on its output
    factors: dict[str, float] = field(default_factory=dict)
    # cut_skip
    skips: tuple[str, ...] = ()
    mode: Literal["zero", "mean"] = "zero"
    # token_weight: the word's token positions in the caption (1 + word index: <start> comes first)
    word: str = ""
    positions: tuple[int, ...] = ()
    weight: float = 1.0
    # swap_prompt / negative
    prompt: str = ""
    # cache
    every: int = 1
    # guidance
    scale: float = 1.0

    def active(self, step: int) -> bool:
        return self.from_step <= step and (self.to_step is None or step <= self.to_step)

    def to_dict(self) -> dict[str, Any]:
        """The knob as checked, for the response: what the run did."""
        out: dict[str, Any] = {"kind": self.kind, "from_step": self.from_step, "to_step": self.to_step}
        out |= {
            "scale": {"factors": self.factors},
            "cut_skip": {"blocks": list(self.skips), "mode": self.mode},
            "token_weight": {"word": self.word, "positions": list(self.positions), "weight": self.weight},
            "swap_prompt": {"prompt": self.prompt},
            "negative": {"prompt": self.prompt},
            "cache": {"every": self.every},
            "guidance": {"scale": self.scale},
        }[self.kind]
        return out


_KEYS = {
    "scale": {"blocks", "weight"},
    "cut_skip": {"blocks", "mode"},
    "token_weight": {"word", "weight"},
    "swap_prompt": {"prompt"},
    "cache": {"every"},
    "guidance": {"scale"},
    "negative": {"prompt"},
}


class Words(Protocol):
    """How a model reads captions: whether one can be read (ValueError saying why not), and where a word sits."""

    def check(self, caption: str) -> None: ...

    def positions(self, prompt: str, word: str) -> tuple[int, ...]: ...


class TwinWords:
    """The twin's words: its vocabulary, one token per word after the start token."""

    def check(self, caption: str) -> None:
        WordTokenizer().check(caption)  # an UnknownWord names the word and the vocabulary

    def positions(self, prompt: str, word: str) -> tuple[int, ...]:
        return tuple(1 + i for i, w in enumerate(WordTokenizer().split(prompt)) if w == word)


def _number(raw: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise KnobError(where, f"must be a number, got {raw!r}")
    if not lo <= raw <= hi:
        raise KnobError(where, f"must lie in {lo:g}..{hi:g}, got {raw:g}")
    return float(raw)


def _int(raw: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise KnobError(where, f"must be a whole number, got {raw!r}")
    if not lo <= raw <= hi:
        raise KnobError(where, f"must lie in {lo}..{hi}, got {raw}")
    return raw


def _caption(raw: Any, where: str, words: Words) -> str:
    if not isinstance(raw, str):
        raise KnobError(where, f"must be a string, got {type(raw).__name__}")
    try:
        words.check(raw)
    except ValueError as exc:
        raise KnobError(where, str(exc)) from None
    return raw


def block_paths(config: UNetConfig) -> list[str]:
    """The top-level blocks a knob can scale: the U's input blocks, middle block and output blocks."""
    from ...model.plan import plan_blocks

    return [b.path for b in plan_blocks(config) if b.stage in ("down", "mid", "up")]


def skip_targets(config: UNetConfig) -> list[str]:
    """The output blocks that concatenate a skip, in the forward's order."""
    from ...model.plan import plan_blocks

    return [b.path for b in plan_blocks(config) if b.skip_from is not None]


def _scale(item: dict[str, Any], where: str, config: UNetConfig) -> dict[str, float]:
    weight = _number(item.get("weight", 0.0), f"{where}.weight", -MAX_WEIGHT, MAX_WEIGHT)
    spec = item.get("blocks")
    if spec is None:
        raise KnobError(f"{where}.blocks", "is required: a block-weight spec such as IN04-OUT05, MIDD or a vector")
    if isinstance(spec, str) and spec.strip().upper() == "MID":
        spec = "M00"  # the tool's preset list has a MID too; as an ID (its XYZ axis) it is the middle block
    try:
        parsed = parse_block_weights(spec, config)
    except ConfigError as exc:
        raise KnobError(f"{where}.blocks", exc.reason) from None
    paths = set(block_paths(config))
    factors: dict[str, float] = {}
    for row in parsed.blocks:
        # A selected block (spec weight s) becomes s * w + (1 - s): 1 stays untouched, 0 fully the knob's weight.
        # For IDs and ranges s is 0 or 1 (the selection); a vector's fractional s blends the two.
        s = row["weight"]
        if row["path"] not in paths or s is None or s == 0:
            continue
        factors[row["path"]] = s * weight + (1.0 - s) if s != 1 else weight
    if not factors:
        raise KnobError(f"{where}.blocks", f"{spec!r} selects no block of the U")
    return factors


def _skips(item: dict[str, Any], where: str, config: UNetConfig) -> tuple[str, ...]:
    targets = skip_targets(config)
    raw = item.get("blocks", "all")
    if raw == "all":
        return tuple(targets)
    if not isinstance(raw, list) or not all(isinstance(b, str) for b in raw):
        raise KnobError(f"{where}.blocks", 'must be "all" or a list of output block paths')
    for j, b in enumerate(raw):
        if b not in targets:
            raise KnobError(f"{where}.blocks[{j}]", f"{b!r} takes no skip; the blocks that do: {', '.join(targets)}")
    return tuple(dict.fromkeys(raw))


def parse_knob(item: Any, index: int, *, prompt: str, steps: int, config: UNetConfig, words: Words) -> Knob:
    where = f"interventions[{index}]"
    if not isinstance(item, dict):
        raise KnobError(where, "must be an object with a kind")
    kind = item.get("kind")
    if kind not in KINDS:
        raise KnobError(f"{where}.kind", f"{kind!r} is not a kind; the kinds: {', '.join(KINDS)}")
    extra = set(item) - _KEYS[kind] - {"kind", "from_step", "to_step"}
    if extra:
        raise KnobError(f"{where}.{sorted(extra)[0]}", f"is not a field of {kind}; its fields: {sorted(_KEYS[kind])}")
    first = _int(item.get("from_step", 0), f"{where}.from_step", 0, steps - 1)
    last_raw = item.get("to_step")
    last = None if last_raw is None else _int(last_raw, f"{where}.to_step", first, steps - 1)
    common: dict[str, Any] = {"kind": kind, "from_step": first, "to_step": last}
    if kind == "scale":
        return Knob(**common, factors=_scale(item, where, config))
    if kind == "cut_skip":
        mode = item.get("mode", "zero")
        if mode not in ("zero", "mean"):
            raise KnobError(f"{where}.mode", f'must be "zero" or "mean", got {mode!r}')
        return Knob(**common, skips=_skips(item, where, config), mode=mode)
    if kind == "token_weight":
        word = item.get("word")
        if not isinstance(word, str) or not word.strip():
            raise KnobError(f"{where}.word", "is required: a word of the caption")
        positions = words.positions(prompt, word.strip().lower())
        if not positions:
            raise KnobError(f"{where}.word", f"{word!r} is not in the caption {prompt!r}")
        weight = _number(item.get("weight", 1.0), f"{where}.weight", 0.0, MAX_TOKEN_WEIGHT)
        return Knob(**common, word=word.strip().lower(), positions=positions, weight=weight)
    if kind in ("swap_prompt", "negative"):
        if "prompt" not in item:
            raise KnobError(f"{where}.prompt", "is required: a caption")
        return Knob(**common, prompt=_caption(item["prompt"], f"{where}.prompt", words))
    if kind == "cache":
        return Knob(**common, every=_int(item.get("every", 1), f"{where}.every", 1, steps))
    return Knob(**common, scale=_number(item.get("scale"), f"{where}.scale", 0.0, MAX_GUIDANCE))


def parse_knobs(items: Any, *, prompt: str, steps: int, config: UNetConfig, words: Words | None = None) -> list[Knob]:
    """Every intervention of a request, checked (KnobError naming the first bad field); captions and words as
    `words` reads them (the twin's by default)."""
    words = words or TwinWords()
    if not isinstance(items, list):
        raise KnobError("interventions", "must be a list of objects")
    if len(items) > MAX_INTERVENTIONS:
        raise KnobError("interventions", f"has {len(items)} items; at most {MAX_INTERVENTIONS}")
    knobs = [
        parse_knob(item, i, prompt=prompt, steps=steps, config=config, words=words) for i, item in enumerate(items)
    ]
    if sum(k.kind == "cache" for k in knobs) > 1:
        raise KnobError("interventions", "holds more than one cache knob; the cache has one schedule")
    return knobs
