"""A LoRA detection as plain data: format names, totals per block and per block-weight ID, and why a header that
is no LoRA is refused."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from ..checkpoint.header import TensorInfo
from ..names.ids import LAYOUT_LISTS, block_id, block_weight_data, layout_of, model_ids
from ..names.modules import unet_names
from ..presets import PRESETS

if TYPE_CHECKING:
    from .detect import LoraDetection, LoraModule

FORMAT_TITLES: dict[str, str] = {
    "lora": "LoRA (kohya): low-rank lora_down / lora_up on the attention layers",
    "locon": "LoCon (kohya, LyCORIS): low-rank lora_down / lora_up on attention and convolution layers",
    "loha": "LyCORIS LoHa: Hadamard product of two low-rank pairs (hada_*)",
    "lokr": "LyCORIS LoKr: Kronecker product of two factors (lokr_*)",
    "full": "full / diff weights (diff, diff_b): a dense weight delta",
    "norm": "norm weights (w_norm, b_norm)",
    "peft": "diffusers / PEFT LoRA (lora_A / lora_B)",
    "diffusers-attn-procs": "diffusers attention-processor LoRA (older: processor.to_q_lora.down / up)",
    "diffusers-lora": "diffusers LoRA (older: lora.down / lora.up, lora_linear_layer)",
}
FAMILY_TITLES: dict[str, str] = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
# The families' text encoders by hidden width, which the narrowest side of their modules shows.
TEXT_ENCODER_WIDTHS = {768: "CLIP ViT-L/14", 1024: "OpenCLIP ViT-H/14", 1280: "OpenCLIP ViT-bigG/14"}

# What a header without any LoRA tensor holds, told by the names of its tensors.
_FOREIGN = (
    (("time_embed.0.weight", "time_embedding.linear_1.weight"), "a UNet checkpoint (the model's own weights)"),
    (("encoder.conv_in.weight", "decoder.conv_out.weight", "quant_conv.weight"), "a VAE"),
    (("emb_params", "string_to_param.*", "clip_l", "clip_g"), "a textual-inversion embedding"),
    (("text_model.embeddings.token_embedding.weight", "token_embedding.weight"), "a text encoder"),
)


def foreign_reason(tensors: dict[str, TensorInfo]) -> str:
    """Why a header holds no LoRA, naming what it does hold."""
    if not tensors:
        return "holds no tensors: not a LoRA"
    names = list(tensors)
    for suffixes, what in _FOREIGN:
        if any(n == s or n.endswith("." + s) or n.endswith(s) for n in names for s in suffixes):
            return (
                f"is {what}, not a LoRA: no tensor name ends in a LoRA part (lora_down.weight, lora_A.weight, "
                "hada_w1_a, lokr_w1, diff, ...)" + ("; open it as a checkpoint" if "UNet" in what else "")
            )
    parts = Counter(n.split(".", 1)[0] for n in names)
    held = ", ".join(f"{p} ({n})" for p, n in parts.most_common(5))
    return (
        "is not a LoRA: no tensor name ends in a LoRA part (lora_down.weight, lora_up.weight, lora_A.weight, "
        f"lora_B.weight, hada_w1_a, lokr_w1, diff, ...); it holds {held}"
    )


def format_of(modules: list[LoraModule], text_encoder: list[LoraModule], keys: list[str]) -> str:
    """The file's format: its most common algorithm, told apart further by key style and the layers it patches."""
    algos = Counter(m.algo for m in [*modules, *text_encoder])
    main = algos.most_common(1)[0][0] if algos else "lora"
    if main != "lora":
        return main
    if any(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys):
        return "peft"
    if any(k.endswith(("_lora.down.weight", "_lora.up.weight")) for k in keys):
        return "diffusers-attn-procs"
    if any(k.endswith((".lora.down.weight", ".lora_linear_layer.down.weight")) for k in keys):
        return "diffusers-lora"
    return "locon" if any(m.kohya_target == "locon" or m.tucker for m in modules) else "lora"


def block_totals(detection: LoraDetection) -> tuple[list[dict[str, Any]], dict[str, int], str | None]:
    """Per top-level block (every block of the model) and per block-weight ID: what the LoRA adds there; and the
    smallest ID list of the model's layout that names every ID it touches."""
    config = PRESETS[detection.preset].config
    per_block: dict[str, list[LoraModule]] = defaultdict(list)
    for m in detection.modules:
        per_block[m.block or ""].append(m)
    blocks = []
    for b in unet_names(config).blocks:
        mods = per_block.get(b.path, [])
        ranks = [m.rank for m in mods if m.rank is not None]
        flops = [m.flops for m in mods]
        blocks.append(
            {
                "path": b.path,
                "id": block_id(b.path),
                "modules": len(mods),
                "params": sum(m.params for m in mods),
                "rank_min": min(ranks) if ranks else None,
                "rank_max": max(ranks) if ranks else None,
                "flops": None if detection.flops is None else sum(f or 0 for f in flops),
            }
        )
    ids: dict[str, int] = dict.fromkeys(model_ids(config), 0)
    ids["BASE"] = sum(m.params for m in detection.text_encoder)
    for b in blocks:
        if b["id"] is not None:
            ids[b["id"]] += b["params"]
    touched = {i for i, n in ids.items() if n}
    layout = layout_of(config)
    lists = block_weight_data().id_lists
    fitting = [n for n in (LAYOUT_LISTS[layout] if layout else ()) if touched <= set(lists[n])]
    return blocks, ids, fitting[0] if fitting else None


# What the report says of each module, in this order: the scaling fields are the same for both kinds of module.
_SCALING_FIELDS = ("algo", "rank", "alpha", "alpha_source", "scale", "params")
_UNET_FIELDS = (
    "path",
    "diffusers",
    "lora_key",
    "spelling",
    "kind",
    *_SCALING_FIELDS,
    "block",
    "block_id",
    "kohya_slot",
    "kohya_target",
    "tucker",
    "dora",
    "flops",
)
_TEXT_ENCODER_FIELDS = ("lora_key", "encoder", *_SCALING_FIELDS)


def _fields(m: LoraModule, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(m, name) for name in names}


def _text_encoder(d: LoraDetection) -> dict[str, Any]:
    per: dict[str, list[LoraModule]] = defaultdict(list)
    for m in d.text_encoder:
        per[m.encoder or ""].append(m)
    encoders = [
        {
            "name": name,
            "modules": len(mods),
            "params": sum(m.params for m in mods),
            "width": d.widths.get(name),
            "model": TEXT_ENCODER_WIDTHS.get(d.widths.get(name, 0)),
        }
        for name, mods in sorted(per.items())
    ]
    modules = [_fields(m, _TEXT_ENCODER_FIELDS) for m in d.text_encoder]
    return {"params": sum(m.params for m in d.text_encoder), "encoders": encoders, "modules": modules}


def _notes(d: LoraDetection) -> list[str]:
    notes = list(d.notes)
    everything = [*d.modules, *d.text_encoder]
    unknown = sum(m.alpha_source == "unknown" for m in everything)
    from_metadata = sum(m.alpha_source == "metadata" for m in everything)
    if unknown:
        notes.append(
            f"{unknown} modules keep their alpha in the tensor data only and the metadata gives none: their scale is "
            "unknown from the header (sdunet-explorer inspect reads them from a .safetensors file)"
        )
    if from_metadata:
        notes.append(
            f"the alpha of {from_metadata} modules is taken from the metadata (ss_network_alpha, conv_alpha, "
            "block_alphas), as kohya sd-scripts sets it; the tensors' own values are in the file's data"
        )
    return notes


def summarize(d: LoraDetection) -> dict[str, Any]:
    """The whole detection as JSON-ready data."""
    blocks, ids, id_list = block_totals(d)
    ranks = Counter(m.rank for m in d.modules if m.rank is not None)
    unet_params = sum(m.params for m in d.modules)
    te_params = sum(m.params for m in d.text_encoder)
    title = FORMAT_TITLES[d.format] + (" + DoRA" if any(m.dora for m in [*d.modules, *d.text_encoder]) else "")
    return {
        "format": d.format,
        "format_title": title,
        "key_style": d.key_style,
        "spelling": d.spelling,
        "family": d.family,
        "family_title": FAMILY_TITLES[d.family] if d.family else None,
        "family_evidence": d.family_evidence,
        "preset": d.preset,
        "layout": layout_of(PRESETS[d.preset].config),
        "metadata": d.metadata,
        "network": d.network.to_dict(),
        "algos": dict(Counter(m.algo for m in [*d.modules, *d.text_encoder]).most_common()),
        "modules": [_fields(m, _UNET_FIELDS) for m in d.modules],
        "text_encoder": _text_encoder(d),
        "unmatched": d.unmatched,
        "blocks": ids,
        "block_ids": [i for i, n in ids.items() if n],
        "id_list": id_list,
        "unet_blocks": blocks,
        "ranks": {str(r): ranks[r] for r in sorted(ranks)},
        "rank_min": min(ranks) if ranks else None,
        "rank_max": max(ranks) if ranks else None,
        "unet_params": unet_params,
        "text_encoder_params": te_params,
        "params_added": unet_params + te_params,
        "flops_added": None if d.flops is None else sum(m.flops or 0 for m in d.modules),
        "flops": d.flops,
        "notes": _notes(d),
    }
