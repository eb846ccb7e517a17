"""Block weights: what a block-weight spec typed into the community's tools gives each block of a model.

A spec is one of (read as hako-mikan/sd-webui-lora-block-weight, `scripts/lora_block_weight.py`, reads them):

- a named preset (`ALL`, `INS`, `MIDD`, `OUTD`, `NIN04`, ...; `data/block_weights.json`): 17 values over the
  17-ID list;
- a vector of numbers whose length picks the ID list: 17 or 26 for the SD 1.x/2.x layout, 12 or 20 for SDXL.
  The tool spreads every vector over the 26 IDs (`to26`): an ID the vector's list lacks gets 0. 25 numbers are
  the merge weights `IN00…OUT11` (SuperMerger, Merge Block Weighted), where `time_embed` follows IN00, `out`
  follows OUT11 and the text encoder takes the separate base alpha;
- IDs and ranges: `IN05,OUT05`, `IN04-OUT05` (either order), `BASE`, `MID` for M00, and a leading `NOT` that
  inverts the selection, as in the tool's XYZ "Block ID" axis; the selected blocks get 1, the others 0.

The tool leaves the modules no ID names (`time_embed`, `label_emb`, `out`) at weight 1. Anything else is a
`ConfigError` on the field `spec` that says what was wrong and what this model accepts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..model.config import ConfigError, UNetConfig
from .ids import LAYOUT_LISTS, block_id, block_weight_data, layout_of, merge_id, model_ids
from .modules import unet_names

FIELD = "spec"
MAX_SPEC_CHARS = 4000
MERGE_LENGTH = 25
_ID = re.compile(r"^(BASE|MID|M00|IN\d{1,3}|OUT\d{1,3})$")


@dataclass
class BlockWeights:
    spec: str
    kind: Literal["preset", "vector", "ids"]
    scheme: Literal["lora_block_weight", "merge"]
    id_list: str | None  # the ID list a vector or preset was read against ("17", ...); None for IDs and ranges
    text_encoder: float | None  # BASE; None where the spec does not set it (the merge vector's base alpha)
    ids: dict[str, float | None]  # every ID of the model -> its weight (BASE is None for merge weights)
    blocks: list[dict[str, Any]]  # every top-level block: path, id, weight (None: not set by this spec)
    untouched: list[str]  # blocks no ID names: the tool leaves them at 1
    ignored: list[str]  # IDs the spec sets that this model does not have
    accepted_lengths: list[int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def accepted_lengths(config: UNetConfig) -> list[int]:
    """The vector lengths the tools define for the model's layout (none for other layouts)."""
    layout = layout_of(config)
    if layout is None:
        return []
    lengths = [int(n) for n in LAYOUT_LISTS[layout]]
    return sorted([*lengths, MERGE_LENGTH] if layout == "sd1" else lengths)


def parse_block_weights(spec: Any, config: UNetConfig) -> BlockWeights:
    """Each block's weight under a spec (see the module docstring); ConfigError on `spec` when it is invalid."""
    if not isinstance(spec, str):
        raise ConfigError(FIELD, f"must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ConfigError(FIELD, "is empty; give a preset name, IDs, a range or a vector of numbers")
    if len(text) > MAX_SPEC_CHARS:
        raise ConfigError(FIELD, f"is {len(text)} characters long, over the limit of {MAX_SPEC_CHARS}")
    data = block_weight_data()
    presets = {name.upper(): p for name, p in data.presets.items()}
    if text.upper() in presets:
        preset = presets[text.upper()]
        return _from_vector(text, "preset", list(preset.values), config, preset_name=preset.name)
    tokens = [t for t in re.split(r"[,\s]+", text) if t]
    numbers = [_number(t) for t in tokens]
    if all(n is not None for n in numbers):
        return _from_vector(text, "vector", [n for n in numbers if n is not None], config)
    if any(n is not None for n in numbers):
        bad = next(t for t, n in zip(tokens, numbers, strict=True) if n is None)
        raise ConfigError(
            FIELD,
            f"mixes numbers with {bad!r}; a vector holds numbers only (the tool's random R, U and inherited X "
            "values are not supported)",
        )
    return _from_ids(text, tokens, config)


def _number(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    if not math.isfinite(value):
        raise ConfigError(FIELD, f"{token!r} is not a finite number")
    return value


def _from_vector(
    text: str, kind: Literal["preset", "vector"], values: list[float], config: UNetConfig, preset_name: str = ""
) -> BlockWeights:
    layout = layout_of(config)
    lengths = accepted_lengths(config)
    n = len(values)
    if layout is None:
        raise ConfigError(
            FIELD,
            "vectors and presets are defined for the SD 1.x/2.x and SDXL layouts only; this model has neither "
            "(give IDs or ranges instead)",
        )
    if kind == "vector" and n not in lengths:
        raise ConfigError(FIELD, f"has {n} numbers; this model accepts {', '.join(map(str, lengths))}")
    if n == MERGE_LENGTH:
        return _merge(text, values, config, lengths)
    listed = block_weight_data().id_lists[str(n)]
    given = dict(zip(listed, values, strict=True))
    ids = model_ids(config)
    weights = {i: given.get(i, 0.0) for i in ids}
    notes = []
    if kind == "preset":
        notes.append(f"preset {preset_name}: {n} values over the {n}-ID list")
    zeroed = [i for i in ids if i not in given]
    if zeroed:
        notes.append(
            f"IDs outside the {n}-ID list get 0, as the tool spreads the vector over 26 IDs: {', '.join(zeroed)}"
        )
    ignored = [i for i in listed if i not in ids]
    return _result(text, kind, "lora_block_weight", str(n), weights, weights["BASE"], ignored, lengths, notes, config)


def _merge(text: str, values: list[float], config: UNetConfig, lengths: list[int]) -> BlockWeights:
    ids = [i for i in model_ids(config) if i != "BASE"]
    weights = dict(zip(ids, values, strict=True))
    notes = [
        "25 merge weights: time_embed follows IN00 and out follows OUT11; the text encoder, the VAE and any "
        "other key take the separate base alpha, which these numbers do not set"
    ]
    return _result(text, "vector", "merge", None, weights, None, [], lengths, notes, config)


def _from_ids(text: str, tokens: list[str], config: UNetConfig) -> BlockWeights:
    ids = list(model_ids(config))
    invert = tokens[0].upper() == "NOT"
    selected: set[str] = set()
    for token in tokens[1:] if invert else tokens:
        ends = token.split("-")
        if len(ends) > 2 or not all(ends):
            raise ConfigError(FIELD, f"{token!r} is not an ID or a range like IN04-OUT05")
        first, last = (_known_id(e, ids) for e in (ends[0], ends[-1]))
        lo, hi = sorted((ids.index(first), ids.index(last)))
        selected.update(ids[lo : hi + 1])
    if not selected:
        raise ConfigError(FIELD, "NOT needs IDs or ranges after it")
    weights = {i: float((i in selected) != invert) for i in ids}
    notes = ["selected blocks get 1, the others 0" + (" (NOT: inverted)" if invert else "")]
    lengths = accepted_lengths(config)
    return _result(text, "ids", "lora_block_weight", None, weights, weights["BASE"], [], lengths, notes, config)


def _known_id(token: str, ids: list[str]) -> str:
    name = token.upper()
    if not _ID.match(name):
        presets = ", ".join(block_weight_data().presets)
        raise ConfigError(
            FIELD, f"{token!r} is not a block ID (BASE, INnn, M00 or MID, OUTnn) nor a preset ({presets})"
        )
    if name == "MID":
        name = "M00"
    digits = re.sub(r"\D", "", name)
    if digits and name != "M00":
        name = re.sub(r"\d+$", f"{int(digits):02d}", name)
    if name not in ids:
        raise ConfigError(FIELD, f"{token} is not a block of this model; its IDs are {', '.join(ids)}")
    return name


def _result(
    text: str,
    kind: Literal["preset", "vector", "ids"],
    scheme: Literal["lora_block_weight", "merge"],
    id_list: str | None,
    weights: dict[str, float],
    text_encoder: float | None,
    ignored: list[str],
    lengths: list[int],
    notes: list[str],
    config: UNetConfig,
) -> BlockWeights:
    layout = layout_of(config)
    blocks: list[dict[str, Any]] = []
    untouched: list[str] = []
    for b in unet_names(config).blocks:
        bid = block_id(b.path)
        if scheme == "merge":
            mid = merge_id(b.path, layout)
            weight = weights.get(mid) if mid is not None else None
        elif bid is None:
            weight = 1.0
            untouched.append(b.path)
        else:
            weight = weights[bid]
        blocks.append({"path": b.path, "id": bid, "weight": weight})
    if untouched:
        notes.append(f"no ID names {', '.join(untouched)}: the tool leaves them at 1 (a plain LoRA has none there)")
    ids: dict[str, float | None] = dict(weights) if scheme == "lora_block_weight" else {"BASE": None, **weights}
    return BlockWeights(text, kind, scheme, id_list, text_encoder, ids, blocks, untouched, ignored, lengths, notes)
