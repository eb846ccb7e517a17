"""Open a LoRA from its safetensors header: its format, its base model, and what it adds to every UNet module.

`detect_lora(header)` reads names, shapes and metadata only (the header a browser sends, or `read_header` of a
file), and

1. splits every tensor name into the module it patches and the part it is (`keys`), grouped by module;
2. looks the UNet modules up in SD 1.x, SD 2.x and SDXL and keeps the model whose layers they fit (`match`);
   the metadata (`ss_base_model_version`, `modelspec.architecture`) and the text encoders' widths break ties;
3. gives each module its rank, alpha, scale (alpha / rank) and the parameters it adds (`algos`, `metadata`), and
   sums them per top-level block and per block-weight ID; text-encoder modules are listed apart, and every
   tensor that patches nothing is listed with the reason;
4. with a trace's nodes (`add_flops`), the FLOPs the unmerged modules add to one forward.

Headers that are no LoRA (a checkpoint, a VAE, an embedding, garbage) raise `LoraError` naming why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checkpoint.header import CheckpointError, TensorInfo, validate_header
from ..names.ids import block_id, kohya_slot, layout_of
from ..names.modules import unet_names
from ..presets import PRESETS
from .algos import ALGO_PARTS, SHARED_PARTS, ModuleTensors, algo_of
from .keys import ParsedKey, parse_key
from .match import CANDIDATES, Match, match_unet
from .metadata import (
    AlphaSource,
    Family,
    Network,
    echo_metadata,
    family_hint,
    module_alpha,
    read_network,
    v_parameterization,
)
from .report import FAMILY_TITLES, foreign_reason, format_of, summarize

MAX_TENSORS = 50_000


class LoraError(CheckpointError):
    """A header that cannot be read as a LoRA. `field` names what is wrong, `reason` says why."""


@dataclass
class LoraModule:
    """One patched module: where it is in every naming, and what it adds."""

    lora_key: str  # the stem as written in the file
    algo: str  # lora (LoRA, LoCon), loha, lokr, full, norm
    rank: int | None
    alpha: float | None
    alpha_source: AlphaSource
    scale: float | None
    params: int
    tensors: ModuleTensors = field(repr=False)
    # UNet modules only (None for the text encoder's):
    path: str | None = None
    diffusers: str | None = None
    spelling: str | None = None
    kind: str | None = None
    block: str | None = None
    block_id: str | None = None
    kohya_slot: int | None = None
    kohya_target: str | None = None
    encoder: str | None = None  # text-encoder modules: lora_te, lora_te1, lora_te2, text_encoder, text_encoder_2
    flops: int | None = None

    @property
    def tucker(self) -> bool:
        return self.tensors.tucker

    @property
    def dora(self) -> bool:
        return self.tensors.dora


@dataclass
class LoraDetection:
    format: str
    key_style: str
    spelling: str | None
    family: Family | None
    preset: str
    family_evidence: list[str]
    metadata: dict[str, str]
    network: Network
    modules: list[LoraModule]
    text_encoder: list[LoraModule]
    unmatched: list[dict[str, str]]
    widths: dict[str, int] = field(default_factory=dict)  # text encoder -> hidden width
    notes: list[str] = field(default_factory=list)
    flops: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return summarize(self)


@dataclass
class _Group:
    parts: dict[str, TensorInfo] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # part -> tensor name
    first: ParsedKey | None = None


def detect_lora(
    header: dict[str, Any], *, preset: str | None = None, alphas: dict[str, float] | None = None
) -> LoraDetection:
    """Detect a LoRA in a safetensors-style header. `preset` fixes the model instead of guessing it; `alphas` gives
    the values of `.alpha` tensors by name, where the caller could read them from the file."""
    tensors, metadata = validate_header(header)
    if len(tensors) > MAX_TENSORS:
        raise LoraError("header", f"holds {len(tensors)} tensors, over the limit of {MAX_TENSORS}")
    if preset is not None and preset not in PRESETS:
        raise LoraError("preset", f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    groups, unmatched = _group_keys(tensors)
    if not groups:
        raise LoraError("header", foreign_reason(tensors))
    unet, te = _by_target(groups, unmatched)
    if not unet and not te:
        first = "; ".join(f"{u['key']}: {u['reason']}" for u in sorted(unmatched, key=lambda u: u["key"])[:3])
        raise LoraError("header", f"none of its LoRA tensors makes a whole UNet or text-encoder module ({first})")
    network = read_network(metadata)
    widths = _text_encoder_widths(te)
    family, match, evidence = _choose(unet, metadata, widths, preset)
    if unet and not match.fits and not te:
        model = f"preset {preset}" if preset else "SD 1.x, SD 2.x or SDXL"
        raise LoraError(
            "header",
            f"a LoRA for another model: none of its {len(unet)} UNet modules is a layer of {model} "
            f"(first: {', '.join(sorted(unet)[:3])})",
        )
    modules = _unet_modules(unet, match, network, alphas or {}, groups, unmatched)
    text_encoder = _text_encoder(te, network, alphas or {}, groups)
    used = preset or _family_preset(family or "sd1", metadata)
    key_styles = {g.first.style for g in groups.values() if g.first is not None}
    spellings = {m.spelling for m in modules}
    return LoraDetection(
        format=format_of(modules, text_encoder, [key for g in groups.values() for key in g.keys.values()]),
        key_style="mixed" if len(key_styles) > 1 else next(iter(key_styles)),
        spelling=None if not spellings else ("mixed" if len(spellings) > 1 else next(iter(spellings))),
        family=family,
        preset=used,
        family_evidence=evidence,
        metadata=echo_metadata(metadata),
        network=network,
        modules=modules,
        text_encoder=text_encoder,
        unmatched=sorted(unmatched, key=lambda u: u["key"]),
        widths=widths,
    )


def _group_keys(tensors: dict[str, TensorInfo]) -> tuple[dict[tuple[str, str], _Group], list[dict[str, str]]]:
    """The header's tensors grouped by (target, module stem), and the keys no LoRA format names, with why."""
    unmatched: list[dict[str, str]] = []
    groups: dict[tuple[str, str], _Group] = {}
    for name, info in tensors.items():
        parsed = parse_key(name)
        if parsed is None:
            unmatched.append({"key": name, "reason": "not a tensor of any LoRA format"})
            continue
        group = groups.setdefault((parsed.target, parsed.stem), _Group(first=parsed))
        group.parts[parsed.part] = info
        group.keys[parsed.part] = name
    return groups, unmatched


def _by_target(
    groups: dict[tuple[str, str], _Group], unmatched: list[dict[str, str]]
) -> tuple[dict[str, tuple[ModuleTensors, str | None]], dict[str, tuple[ModuleTensors, ParsedKey]]]:
    """The whole modules of the UNet (stem → tensors, original module) and of the text encoder (stem → tensors,
    parsed key); the tensors of incomplete or unprefixed modules go to `unmatched`."""
    unet: dict[str, tuple[ModuleTensors, str | None]] = {}
    te: dict[str, tuple[ModuleTensors, ParsedKey]] = {}
    for (target, stem), group in groups.items():
        module = _module_tensors(group, unmatched)
        if module is None or group.first is None:
            continue
        if target == "unet":
            unet[stem] = (module, group.first.module)
        elif target == "text_encoder":
            te[stem] = (module, group.first)
        else:
            for key in group.keys.values():
                unmatched.append({"key": key, "reason": "no UNet or text-encoder prefix (lora_unet_, lora_te_, unet.)"})
    return unet, te


def _module_tensors(group: _Group, unmatched: list[dict[str, str]]) -> ModuleTensors | None:
    """The group's tensors as one module, or None (its tensors are then listed as unmatched, with why)."""
    names = set(group.parts)
    algo = algo_of(names)
    if algo is None:
        for key in group.keys.values():
            unmatched.append({"key": key, "reason": "an alpha or dora_scale without the weights it scales"})
        return None
    own = ALGO_PARTS[algo] | SHARED_PARTS
    for part in sorted(names - own):
        unmatched.append({"key": group.keys[part], "reason": f"part of another format than this module's {algo}"})
    module = ModuleTensors(algo, {p: t for p, t in group.parts.items() if p in own})
    missing = module.missing_parts()
    if missing:
        for part in module.parts:
            unmatched.append({"key": group.keys[part], "reason": f"incomplete {algo} module: no {', '.join(missing)}"})
        return None
    return module


def _choose(
    unet: dict[str, tuple[ModuleTensors, str | None]],
    metadata: dict[str, str],
    widths: dict[str, int],
    preset: str | None,
) -> tuple[Family | None, Match, list[str]]:
    """The family (and its match): best shape fit, then the metadata, then the text encoders' widths."""
    hint, hint_key = family_hint(metadata)
    te_hint: Family | None = None
    if "lora_te2" in widths or "text_encoder_2" in widths:
        te_hint = "sdxl"
    elif 1024 in widths.values():
        te_hint = "sd2"
    elif 768 in widths.values():
        te_hint = "sd1"
    if preset is not None:
        # The preset's own family (None for the LDMs and the tiny model, which no LoRA tool targets).
        given = PRESETS[preset].family
        family: Family | None = given if given in CANDIDATES else None  # type: ignore[assignment]
        match = match_unet(PRESETS[preset].config, unet)
        return family, match, [f"preset {preset} was given: {len(match.fits)} of {len(unet)} UNet modules fit it"]
    matches = {f: match_unet(PRESETS[p].config, unet) for f, p in CANDIDATES.items()}
    best = max(s.score for s in matches.values())
    tied = [f for f, m in matches.items() if m.score == best]
    evidence = []
    if unet:
        counts = ", ".join(f"{FAMILY_TITLES[f]} {len(m.fits)}" for f, m in matches.items())
        evidence.append(f"UNet modules whose shapes fit each model's layers (of {len(unet)}): {counts}")
    for source, value in ((hint_key, hint), ("text encoders", te_hint)):
        if value is not None and value in tied and len(tied) > 1:
            tied = [value]
            evidence.append(f"{source} says {FAMILY_TITLES[value]}, which breaks the tie")
    chosen: Family = tied[0]  # type: ignore[assignment]
    if len(tied) > 1:
        evidence.append(f"the shapes fit {' and '.join(FAMILY_TITLES[f] for f in tied)} alike; taking the first")
    if hint is not None and hint != chosen:
        evidence.append(f"{hint_key} says {FAMILY_TITLES[hint]}, but the shapes fit {FAMILY_TITLES[chosen]}")
    elif hint is not None:
        evidence.append(f"{hint_key} = {metadata.get(hint_key or '', '')!r} agrees")
    return chosen, matches[chosen], evidence


def _family_preset(family: Family, metadata: dict[str, str]) -> str:
    if family == "sd2" and v_parameterization(metadata):
        return "sd2-v"  # the same network as sd2, traced at its 768 px
    return CANDIDATES[family]


def _unet_modules(
    unet: dict[str, tuple[ModuleTensors, str | None]],
    match: Match,
    network: Network,
    alphas: dict[str, float],
    groups: dict[tuple[str, str], _Group],
    unmatched: list[dict[str, str]],
) -> list[LoraModule]:
    layout = layout_of(match.config)
    order = {m.path: i for i, m in enumerate(unet_names(match.config).modules)}
    out = []
    for stem, (tensors, _) in unet.items():
        keys = groups[("unet", stem)].keys
        if stem not in match.fits:
            misfit = match.misfits.get(stem)
            reason = (
                f"names {misfit.path}, but its shapes do not fit that layer's weight {list(misfit.weight_shape or ())}"
                if misfit is not None
                else "names no module with a weight in this model"
            )
            unmatched.extend({"key": key, "reason": reason} for key in keys.values())
            continue
        module, spelling = match.fits[stem]
        weight = module.weight_shape or ()
        slot = kohya_slot(module.path, layout)
        out.append(
            _patched(
                stem,
                tensors,
                network,
                alphas.get(keys.get("alpha", "")),
                large_conv=any(k > 1 for k in weight[2:]),
                slot=slot,
                path=module.path,
                diffusers=module.diffusers,
                spelling=spelling,
                kind=module.kind,
                block=module.block,
                block_id=block_id(module.block),
                kohya_slot=slot,
                kohya_target=module.kohya_target,
            )
        )
    out.sort(key=lambda m: order[m.path or ""])
    return out


def _patched(
    stem: str,
    tensors: ModuleTensors,
    network: Network,
    alpha_value: float | None,
    *,
    large_conv: bool,
    slot: int | None,
    **where: Any,
) -> LoraModule:
    """One patched module with its rank, alpha and scale; `where` says where it sits (UNet module or encoder)."""
    alpha, source = module_alpha(
        network, has_alpha="alpha" in tensors.parts, value=alpha_value, large_conv=large_conv, slot=slot
    )
    rank = tensors.rank
    if source == "none" or rank is None:
        scale: float | None = 1.0  # no alpha (or no rank) means no scaling (ComfyUI, A1111)
    else:
        scale = alpha / rank if alpha is not None else None
    return LoraModule(
        lora_key=stem,
        algo=tensors.algo,
        rank=rank,
        alpha=alpha,
        alpha_source=source,
        scale=scale,
        params=tensors.params,
        tensors=tensors,
        **where,
    )


def _text_encoder_widths(te: dict[str, tuple[ModuleTensors, ParsedKey]]) -> dict[str, int]:
    """Per encoder, its hidden width: the narrowest side of any of its modules' deltas."""
    widths: dict[str, int] = {}
    for tensors, parsed in te.values():
        delta = tensors.delta_shape()
        if delta is not None and parsed.encoder is not None:
            widths[parsed.encoder] = min(widths.get(parsed.encoder, delta[0]), *delta)
    return widths


def _text_encoder(
    te: dict[str, tuple[ModuleTensors, ParsedKey]],
    network: Network,
    alphas: dict[str, float],
    groups: dict[tuple[str, str], _Group],
) -> list[LoraModule]:
    modules = []
    for stem, (tensors, parsed) in sorted(te.items()):
        keys = groups[("text_encoder", stem)].keys
        alpha = alphas.get(keys.get("alpha", ""))
        modules.append(
            _patched(stem, tensors, network, alpha, large_conv=False, slot=None, kind="linear", encoder=parsed.encoder)
        )
    return modules
