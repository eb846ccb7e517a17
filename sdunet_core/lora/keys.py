"""LoRA tensor names: split each into the module it patches (its stem) and the part it is.

The formats people use, as ComfyUI loads them (comfyanonymous/ComfyUI `comfy/lora.py` `load_lora`,
`comfy/weight_adapter/lora.py`, `loha.py`, `lokr.py`) and kohya-ss/sd-scripts writes them (`networks/lora.py`):

- kohya LoRA and LoCon: `<stem>.lora_down.weight`, `<stem>.lora_up.weight`, optional `<stem>.lora_mid.weight`
  (a CP/Tucker core for convs), `<stem>.alpha` (a scalar); the stem is `lora_unet_` / `lora_te_` / `lora_te1_` /
  `lora_te2_` followed by the module path with `_` for `.`;
- LyCORIS LoHa: `hada_w1_a`, `hada_w1_b`, `hada_w2_a`, `hada_w2_b`, optional `hada_t1`, `hada_t2`;
  LoKr: `lokr_w1` or `lokr_w1_a` + `lokr_w1_b`, `lokr_w2` or `lokr_w2_a` + `lokr_w2_b`, optional `lokr_t2`;
  full / diff: `diff`, `diff_b`; norms: `w_norm`, `b_norm`; DoRA: `dora_scale` (on any of them);
- diffusers / PEFT: `<prefix><module path with dots>.lora_A.weight` (down) and `.lora_B.weight` (up), where the
  prefix is `unet.` (or `text_encoder.`, `text_encoder_2.`); older files: `.lora.down.weight` / `.lora.up.weight`,
  `.lora_linear_layer.down.weight` / `.up.weight`, and attention processors,
  `<attention>.processor.to_q_lora.down.weight` (`to_out_lora` is `to_out.0`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Style = Literal["kohya", "diffusers"]
Part = str  # "down", "up", "mid", "alpha", "dora_scale", "hada_w1_a", ..., "diff", "diff_b", "w_norm", "b_norm"

# kohya-style suffixes (after the first dot) -> the part they are.
_KOHYA_PARTS: dict[str, Part] = {
    "lora_down.weight": "down",
    "lora_up.weight": "up",
    "lora_mid.weight": "mid",
    "alpha": "alpha",
    "dora_scale": "dora_scale",
    **{p: p for p in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")},
    **{p: p for p in ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")},
    **{p: p for p in ("diff", "diff_b", "w_norm", "b_norm")},
}
# diffusers-style suffixes (after the module path), longest first.
_DIFFUSERS_PARTS: tuple[tuple[str, Part], ...] = (
    (".lora_linear_layer.down.weight", "down"),
    (".lora_linear_layer.up.weight", "up"),
    ("_lora.down.weight", "down"),  # attention processors: <attn>.processor.to_q_lora.down.weight
    ("_lora.up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".alpha", "alpha"),
    (".dora_scale", "dora_scale"),
    (".diff_b", "diff_b"),
    (".diff", "diff"),
)
KOHYA_UNET = "lora_unet_"
KOHYA_TEXT_ENCODERS = ("lora_te1_", "lora_te2_", "lora_te_")
DIFFUSERS_UNET = ("unet.", "base_model.model.", "diffusion_model.", "model.diffusion_model.")
DIFFUSERS_TEXT_ENCODERS = ("text_encoder_2.", "text_encoder.")


@dataclass(frozen=True)
class ParsedKey:
    key: str  # the tensor name as in the file
    stem: str  # everything before the part: what names the patched module
    part: Part
    style: Style
    target: Literal["unet", "text_encoder", "unknown"]
    encoder: str | None = None  # lora_te / lora_te1 / lora_te2 / text_encoder / text_encoder_2
    module: str | None = None  # diffusers style: the dotted module path without the prefix (processor fixed)


def parse_key(key: str) -> ParsedKey | None:
    """The stem and part of a LoRA tensor name; None when the name is no part of any LoRA format."""
    if key.startswith("lora_") and "." in key:
        stem, _, suffix = key.partition(".")
        part = _KOHYA_PARTS.get(suffix)
        if part is not None:
            return _kohya(key, stem, part)
    for suffix, part in _DIFFUSERS_PARTS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return _diffusers(key, key[: -len(suffix)], part, processor=suffix.startswith("_lora"))
    return None


def _kohya(key: str, stem: str, part: Part) -> ParsedKey:
    if stem.startswith(KOHYA_UNET):
        return ParsedKey(key, stem, part, "kohya", "unet")
    for prefix in KOHYA_TEXT_ENCODERS:
        if stem.startswith(prefix):
            return ParsedKey(key, stem, part, "kohya", "text_encoder", encoder=prefix[:-1])
    return ParsedKey(key, stem, part, "kohya", "unknown")


def _diffusers(key: str, stem: str, part: Part, *, processor: bool) -> ParsedKey:
    module = stem
    if processor:
        # <attention>.processor.to_q -> <attention>.to_q; to_out is the attention's to_out.0 Linear.
        head, sep, tail = module.rpartition(".processor.")
        if not sep:
            return ParsedKey(key, stem, part, "diffusers", "unknown")
        module = f"{head}.{tail}.0" if tail == "to_out" else f"{head}.{tail}"
    for prefix in DIFFUSERS_TEXT_ENCODERS:
        if module.startswith(prefix):
            return ParsedKey(key, stem, part, "diffusers", "text_encoder", prefix[:-1], module[len(prefix) :])
    for prefix in DIFFUSERS_UNET:
        if module.startswith(prefix):
            module = module[len(prefix) :]
            break
    return ParsedKey(key, stem, part, "diffusers", "unet", module=module)
