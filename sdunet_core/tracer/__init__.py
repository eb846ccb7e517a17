"""The tracer: one hooked forward on the meta device that records every module, and what is read off its trace.

`trace` is `trace_unet()` (the typed `Trace` of a model at an input) and `trace_totals()`; it builds its input in
`inputs`, records modules in `structure` with their facts from `facts`, counts FLOPs and memory at dispatch in
`counting`, replays repeated sub-blocks through `memo` and times real runs in `timing`. Read off traces: `compare`
(two models side by side, one model across sizes), `summary` (the text table). `cost` estimates a model's cost from
its config alone, before anything is built.

Exports `trace_unet`, `trace_totals`, `default_sample_size` and the defaults it rests on (`DEFAULT_LATENT_FACTOR`,
`DEFAULT_CONTEXT_TOKENS`), `parse_dtype`, `available_bytes`,
`run_memory_bytes`, `TraceTimeout`, `estimate_cost` and `format_summary`.
"""

from .cost import estimate_cost
from .counting import TraceTimeout
from .inputs import DEFAULT_CONTEXT_TOKENS, DEFAULT_LATENT_FACTOR, default_sample_size, parse_dtype
from .summary import format_summary
from .timing import available_bytes, run_memory_bytes
from .trace import trace_totals, trace_unet

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_LATENT_FACTOR",
    "TraceTimeout",
    "available_bytes",
    "default_sample_size",
    "estimate_cost",
    "format_summary",
    "parse_dtype",
    "run_memory_bytes",
    "trace_totals",
    "trace_unet",
]
