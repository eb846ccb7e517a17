"""Builds LoRA headers (and tiny real files) to each format's key patterns, from our UNet's real layer shapes.

Formats, as the tools write them (see sdunet_core/lora/keys.py for the sources): kohya LoRA (attention layers) and
LoCon (plus ResBlocks and resamplers, optionally with a CP core), LyCORIS LoHa and LoKr, full / diff weights,
diffusers / PEFT (`lora_A` / `lora_B`) and the older diffusers attention processors. The text encoder's modules
are CLIP's: 12 layers of width 768 (SD 1.x, SDXL's first), 23 of 1024 (SD 2.x), 32 of 1280 (SDXL's second).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdunet_core import PRESETS
from sdunet_core.names import ModuleInfo, lora_stem, unet_names

Select = Callable[[ModuleInfo], bool]
FORMATS = ("lora", "locon", "locon-cp", "loha", "lokr", "full", "peft", "attn-procs")
TE_MODULES = ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj", "mlp_fc1", "mlp_fc2")
TEXT_ENCODERS = {"sd1": [("lora_te", 12, 768)], "sd2": [("lora_te", 23, 1024)]}
TEXT_ENCODERS["sdxl"] = [("lora_te1", 12, 768), ("lora_te2", 32, 1280)]
SIZES = {"F16": 2, "F32": 4, "BF16": 2}


def modules_for(preset: str, fmt: str, select: Select | None = None) -> list[ModuleInfo]:
    """The modules a network of this format trains: kohya's targets (attention only for a plain LoRA)."""
    wanted = ("lora",) if fmt in ("lora", "peft", "attn-procs") else ("lora", "locon")
    mods = [m for m in unet_names(PRESETS[preset].config).modules if m.leaf and m.kohya_target in wanted]
    if fmt == "attn-procs":  # attention processors patch the four projections of each attention only
        mods = [m for m in mods if ".attn" in m.path]
    return [m for m in mods if select is None or select(m)]


def _parts(fmt: str, w: tuple[int, ...], rank: int) -> dict[str, list[int]]:
    out_ch, in_ch, kernel = w[0], w[1], list(w[2:])
    ones = [1] * len(kernel)
    if fmt in ("lora", "locon", "peft", "attn-procs") or (fmt == "locon-cp" and not any(k > 1 for k in kernel)):
        return {"down": [rank, in_ch, *kernel], "up": [out_ch, rank, *ones]}
    if fmt == "locon-cp":
        return {"down": [rank, in_ch, *ones], "mid": [rank, rank, *kernel], "up": [out_ch, rank, *ones]}
    if fmt == "loha":
        cols = in_ch * math.prod(kernel)
        return {"hada_w1_a": [out_ch, rank], "hada_w1_b": [rank, cols], "hada_w2_a": [out_ch, rank],
                "hada_w2_b": [rank, cols]}  # fmt: skip
    if fmt == "lokr":
        # kron(w1 [a, b], w2 [out/a, in/b (, kernel)]), w2 factorised at the rank.
        a = 4 if out_ch % 4 == 0 else 1
        b = 4 if in_ch % 4 == 0 else 1
        return {
            "lokr_w1": [a, b],
            "lokr_w2_a": [out_ch // a, rank],
            "lokr_w2_b": [rank, in_ch // b * math.prod(kernel)],
        }
    if fmt == "full":
        return {"diff": list(w), "diff_b": [out_ch]}
    raise ValueError(fmt)


_KOHYA_SUFFIX = {"down": "lora_down.weight", "up": "lora_up.weight", "mid": "lora_mid.weight"}
_PEFT_SUFFIX = {"down": "lora_A.weight", "up": "lora_B.weight"}


def _names(fmt: str, m: ModuleInfo, spelling: str, part: str) -> str:
    if fmt == "peft":
        return f"unet.{m.diffusers}.{_PEFT_SUFFIX[part]}"
    if fmt == "attn-procs":
        head, _, proj = (m.diffusers or "").rpartition(".")
        if proj == "0":  # to_out.0
            head, _, proj = head.rpartition(".")
        return f"unet.{head}.processor.{proj}_lora.{part}.weight"
    stem = lora_stem(m.path if spelling == "original" else m.diffusers)
    return f"{stem}.{_KOHYA_SUFFIX.get(part, part)}"


def lora_tensors(
    preset: str,
    fmt: str = "lora",
    *,
    rank: int = 4,
    spelling: str | None = None,
    text_encoder: bool = True,
    select: Select | None = None,
    alpha: bool = True,
) -> dict[str, list[int]]:
    """Tensor name -> shape of a LoRA of `fmt` for `preset` (spelling: kohya's own for the family by default)."""
    family = PRESETS[preset].family
    spelling = spelling or ("original" if family == "sdxl" else "diffusers")
    out: dict[str, list[int]] = {}
    for m in modules_for(preset, fmt, select):
        for part, shape in _parts(fmt, m.weight_shape or (), rank).items():
            out[_names(fmt, m, spelling, part)] = shape
        if alpha and fmt not in ("full", "peft", "attn-procs"):
            out[f"{_names(fmt, m, spelling, 'x').rpartition('.')[0]}.alpha"] = []
    if text_encoder:
        for prefix, layers, width in TEXT_ENCODERS[family]:
            for layer in range(layers):
                for name in TE_MODULES:
                    shape = (width * 4 if name == "mlp_fc1" else width, width * 4 if name == "mlp_fc2" else width)
                    te_fmt = "lora" if fmt in ("locon", "locon-cp", "peft", "attn-procs") else fmt
                    parts = _parts(te_fmt, shape, rank)
                    stem = f"{prefix}_text_model_encoder_layers_{layer}_{name}"
                    if fmt == "peft":
                        dotted = f"{'text_encoder_2' if prefix == 'lora_te2' else 'text_encoder'}.text_model.encoder"
                        stem = f"{dotted}.layers.{layer}.{name.replace('_', '.', 1)}"
                        out.update({f"{stem}.{_PEFT_SUFFIX[p]}": s for p, s in parts.items()})
                        continue
                    out.update({f"{stem}.{_KOHYA_SUFFIX.get(p, p)}": s for p, s in parts.items()})
                    if alpha and te_fmt != "full":
                        out[f"{stem}.alpha"] = []
                if select is not None:
                    break  # one layer is enough for a small file
    return out


def make_header(tensors: dict[str, list[int]], metadata: dict[str, str] | None = None, dtype: str = "F16") -> dict:
    """A safetensors header with consecutive data_offsets."""
    header: dict[str, Any] = {"__metadata__": dict(metadata or {})} if metadata is not None else {}
    offset = 0
    for name, shape in tensors.items():
        n = math.prod(shape) * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    return header


def kohya_metadata(family: str, rank: int = 4, alpha: float = 1.0, **args: str) -> dict[str, str]:
    import json

    version = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}[family]
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": version,
    }
    if args:
        meta["ss_network_args"] = json.dumps(args)
    return meta


def write_lora(
    path: Path, tensors: dict[str, list[int]], alpha: float, metadata: dict[str, str], alpha_dtype: str = "float32"
) -> None:
    """A real safetensors file (or a torch .pt by the suffix): zero weights, every alpha scalar set to `alpha`."""
    import torch
    from safetensors.torch import save_file

    dtype = getattr(torch, alpha_dtype)
    data = {
        name: torch.full(shape, alpha, dtype=dtype)
        if name.endswith(".alpha")
        else torch.zeros(shape, dtype=torch.float16)
        for name, shape in tensors.items()
    }
    if path.suffix == ".pt":
        torch.save(data, path)
    else:
        save_file(data, str(path), metadata=metadata)
