"""`sdunet-explorer inspect FILE` for a LoRA file: format, family, ranks and alphas, and what each block gets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sdunet_core.lora import add_flops, detect_lora
from sdunet_core.lora.alphas import read_alphas
from sdunet_core.tracer.summary import human


def inspect_lora(args: argparse.Namespace, header: dict[str, Any]) -> int:
    alphas = read_alphas(args.file, header) if not str(args.file).endswith((".ckpt", ".pt")) else {}
    detection = detect_lora(header, preset=args.preset, alphas=alphas)
    if args.flops:
        from sdunet_core import PRESETS
        from sdunet_core.tracer.trace import trace_unet

        factor = PRESETS[detection.preset].latent_factor
        sample = tuple(s // factor for s in args.image_size) if args.image_size else None
        trace = trace_unet(detection.preset, sample_size=sample)
        inputs = {
            "preset": detection.preset,
            "image_size": trace.input.image_size,
            "sample_size": trace.input.sample_size,
        }
        add_flops(detection, trace.nodes, {**inputs, "batch": 1})
    d = detection.to_dict()
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    for line in summary_lines(d):
        print(line)
    return 0


def summary_lines(d: dict[str, Any]) -> list[str]:
    """The detection in a few lines: what it is, for which model, with what ranks, and where it lands."""
    spelling = f", {d['spelling']} spelling" if d["spelling"] else ""
    lines = [
        f"LoRA: {d['format_title']} ({d['key_style']} keys{spelling})",
        f"  for {d['family_title'] or 'another model'} (matched against preset {d['preset']})",
        *(f"    {e}" for e in d["family_evidence"]),
        f"  UNet: {len(d['modules'])} modules, {d['unet_params']:,} parameters; "
        f"text encoders: {len(d['text_encoder']['modules'])} modules, {d['text_encoder_params']:,} parameters",
    ]
    if d["ranks"]:
        ranks = ", ".join(f"rank {r} x{n}" for r, n in d["ranks"].items())
        lines.append(f"  {ranks}")
    alphas = sorted({(m["alpha"], m["scale"], m["alpha_source"]) for m in d["modules"]}, key=str)
    for alpha, scale, source in alphas[:6]:
        lines.append(f"  alpha {alpha if alpha is not None else 'unknown'} ({source}) -> scale {scale}")
    touched = [f"{i} {d['blocks'][i]:,}" for i in d["block_ids"]]
    fits = f"; the {d['id_list']}-ID list names them all" if d["id_list"] else ""
    lines.append(f"  blocks touched (parameters){fits}:")
    lines.extend(f"    {t}" for t in touched)
    for b in d["unet_blocks"]:
        if b["params"] and b["id"] is None:
            lines.append(f"    {b['path']} (no block-weight ID) {b['params']:,}")
    if d["flops_added"] is not None and d["flops"]:
        f = d["flops"]
        lines.append(
            f"  FLOPs added per forward at {f['image_size']} px, batch {f['batch']}: {human(d['flops_added'])}"
        )
    if d["unmatched"]:
        first = ", ".join(u["key"] for u in d["unmatched"][:3])
        lines.append(
            f"  {len(d['unmatched'])} tensors patch nothing here: {first}{' ...' if len(d['unmatched']) > 3 else ''}"
        )
    lines.extend(f"  note: {n}" for n in d["notes"])
    return lines
