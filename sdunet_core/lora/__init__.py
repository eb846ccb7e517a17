"""LoRA files read from their safetensors header: format, base model, and what each UNet module gets.

`detect_lora(header)` names the format (kohya LoRA / LoCon, LyCORIS LoHa / LoKr, full / diff weights,
diffusers / PEFT and the older diffusers names) and the base family (SD 1.x, SD 2.x, SDXL), and lists every
patched module with its rank, alpha, scale and parameters; `add_flops` adds the FLOPs the unmerged modules cost
one forward, from a trace. `looks_like_lora` tells a LoRA header from a checkpoint's.
"""

from .detect import LoraDetection, LoraError, LoraModule, detect_lora
from .flops import add_flops
from .keys import parse_key

__all__ = ["LoraDetection", "LoraError", "LoraModule", "add_flops", "detect_lora", "looks_like_lora", "parse_key"]


def looks_like_lora(header: dict) -> bool:
    """True when any tensor name is a part of a LoRA format (a checkpoint has none)."""
    return any(name != "__metadata__" and parse_key(name) is not None for name in header)
