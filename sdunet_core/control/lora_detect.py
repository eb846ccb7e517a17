"""A control-LoRA's file: Stability AI's control-LoRAs, as ComfyUI reads them (`comfy/controlnet.py`, `ControlLora`).

A `lora_controlnet` marker, the ControlNet's own parts as full tensors (hint encoder, zero convs, norms, biases) and
every large weight of the encoder copy as a low-rank pair `<module>.up` / `<module>.down`, added to the base UNet's
weight when the ControlNet is built. Its family comes from the context width its cross-attention reads; it injects
where a ControlNet of that family does.
"""

from __future__ import annotations

from ..checkpoint.detect import split_tensors
from ..checkpoint.header import TensorInfo
from .controlnet_detect import fit_config, injections_of
from .presets import CONTROLNET_PRESETS
from .report import ControlDetectionReport, ControlLoraFacts, Family, control_report, other_tensors_note

# The context width of a family's cross-attention (what tells SD 1.x from SD 2.x when the widths agree).
_CONTEXT_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}


def detect_control_lora(
    tensors: dict[str, TensorInfo], metadata: dict[str, str], prefix: str | None = None
) -> ControlDetectionReport:
    """The report of a control-LoRA under `prefix`, or under its `lora_controlnet` marker's when not given."""
    if prefix is None:
        marker = next(n for n in tensors if n == "lora_controlnet" or n.endswith(".lora_controlnet"))
        prefix = marker[: -len("lora_controlnet")]
    own, other = split_tensors(tensors, prefix, None)
    downs = {k[: -len(".down")]: v for k, v in own.items() if k.endswith(".down")}
    ups = {k[: -len(".up")]: v for k, v in own.items() if k.endswith(".up")}
    pairs = sorted(set(downs) & set(ups))
    ranks = sorted({downs[m].shape[0] for m in pairs if downs[m].shape})
    lora_params = sum(downs[m].numel + ups[m].numel for m in pairs)
    full = [k for k in own if k != "lora_controlnet" and not k.endswith((".up", ".down"))]
    notes: list[str] = []

    # The family: the context width the cross-attention's keys read (a down's input), else the label embedding.
    widths = {downs[m].shape[1] for m in pairs if m.endswith("attn2.to_k") and len(downs[m].shape) >= 2}
    family: Family | None = None
    for width in sorted(widths):
        family = _CONTEXT_FAMILY.get(width)  # type: ignore[assignment]
    if family is None and "label_emb.0.0.weight" in own:
        family = "sdxl"
    if family is None:
        notes.append("no cross-attention or label embedding tensor tells the family")
    control = next((p for p in CONTROLNET_PRESETS.values() if p.family == family), None)
    config = fit_config(control.config, {k: v.shape for k, v in own.items()}) if control is not None else None
    hint = own.get("input_hint_block.0.weight")
    return control_report(
        "control_lora",
        "ldm",
        prefix,
        own,
        other,
        metadata,
        family=family,
        base_preset=control.base_preset if control else None,
        config=config.unet.to_dict() if config else None,
        hint_channels=hint.shape[1] if hint is not None and len(hint.shape) >= 2 else None,
        lora=ControlLoraFacts(
            ranks=ranks, lora_modules=len(pairs), full_tensors=len(full), lora_parameters=lora_params
        ),
        injections=injections_of(config) if config else [],
        notes=[*notes, *other_tensors_note(other)],
    )
