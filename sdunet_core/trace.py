"""trace_unet: one forward pass that records the module tree, tensor shapes, parameters, FLOPs, memory and timings.

Structure, shapes and FLOPs come from the meta device: no weights are allocated and a full SD model traces in a
fraction of a second. FLOPs are counted where operations are dispatched, with the formulas of
`torch.utils.flop_counter` (2 FLOPs per multiply-add; conv, mm/addmm, bmm and fused attention), attributed to the
innermost module running at the time and then summed up the tree, so every node's FLOPs equal its own plus its
children's. Timings (device "cpu" or "cuda") come from a second, real run with per-module hooks.

Nothing here is process-global: hooks live on the traced model instance and the dispatch mode is thread-local,
so traces from several threads never mix. A lock still serializes the meta passes: they hold the GIL anyway,
and one at a time keeps peak memory predictable.

The JSON form is documented in docs/trace-schema.md.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .config import ConfigError, UNetConfig
from .presets import PRESETS
from .unet import UNetModel

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Progress = Callable[[str, int, int], None]
_META_LOCK = threading.Lock()

# Which FLOP bucket an aten op belongs to. bmm appears in this model only inside attention (QK^T and AV); the fused
# SDPA kernels are counted the same way when a real device picks them.
_OP_KIND = {"convolution": "conv", "mm": "linear", "addmm": "linear", "bmm": "attention", "baddbmm": "attention"}
for _op in flop_registry:
    if "attention" in str(_op):
        _OP_KIND[str(_op).removeprefix("aten.")] = "attention"

_ROLE_BY_CLASS = {
    "UNetModel": "unet",
    "ResBlock": "resblock",
    "SpatialTransformer": "spatial_transformer",
    "BasicTransformerBlock": "transformer_block",
    "FeedForward": "feed_forward",
    "GEGLU": "geglu",
    "AttentionBlock": "attention_block",
    "Downsample": "downsample",
    "Upsample": "upsample",
    "GroupNorm32": "norm",
    "GroupNorm": "norm",
    "LayerNorm": "norm",
    "Conv1d": "conv",
    "Conv2d": "conv",
    "Conv3d": "conv",
    "Linear": "linear",
    "SiLU": "activation",
    "Dropout": "dropout",
    "Identity": "identity",
    "AvgPool1d": "pool",
    "AvgPool2d": "pool",
    "AvgPool3d": "pool",
    "Embedding": "embedding",
}
_ROLE_BY_NAME = {
    "input_blocks": "down_stage",
    "output_blocks": "up_stage",
    "transformer_blocks": "transformer_blocks",
    "in_layers": "in_layers",
    "emb_layers": "emb_layers",
    "out_layers": "out_layers",
    "to_out": "attention_output",
    "net": "feed_forward_net",
    "out": "output",
    "id_predictor": "codebook_head",
    "time_embed": "time_embedding",
    "label_emb": "label_embedding",
}


@dataclass
class Trace:
    """The result of trace_unet: plain data, ready for JSON through to_dict()."""

    config: UNetConfig
    preset: str | None
    device: str
    dtype: str
    inputs: dict[str, Any]
    nodes: list[dict[str, Any]]
    blocks: list[dict[str, Any]]
    skips: list[dict[str, Any]]
    totals: dict[str, Any]
    timing: dict[str, Any] | None = None
    torch_version: str = field(default_factory=lambda: torch.__version__)

    def node(self, path: str) -> dict[str, Any]:
        return self._by_path[path]

    @cached_property
    def _by_path(self) -> dict[str, dict[str, Any]]:
        return {n["path"]: n for n in self.nodes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "preset": self.preset,
            "config": self.config.to_dict(),
            "ldm_params": self.config.to_ldm(),
            "input": self.inputs,
            "device": self.device,
            "dtype": self.dtype,
            "torch": self.torch_version,
            "totals": self.totals,
            "timing": self.timing,
            "blocks": self.blocks,
            "skips": self.skips,
            "nodes": self.nodes,
        }


# ---- inputs ------------------------------------------------------------------------------------------------
def _preset_for(config: UNetConfig) -> str | None:
    return next((name for name, p in PRESETS.items() if p.config == config), None)


def default_sample_size(config: UNetConfig, preset: str | None = None) -> tuple[int, ...]:
    """The preset's reference latent size, else 64 per side (rounded up to what the downsampling divides)."""
    name = preset or _preset_for(config)
    if name is not None and config.dims == 2:
        return PRESETS[name].sample_size
    f = config.downsample_factor
    side = max(f, math.ceil(64 / f) * f)
    return (4, side, side) if config.dims == 3 else (side,) * config.dims


def make_inputs(
    config: UNetConfig,
    sample_size: tuple[int, ...],
    batch: int,
    context_tokens: int | None,
    device: torch.device | str,
    dtype: torch.dtype,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor | None]:
    """The model's forward arguments for one traced call: x, timesteps, context, y."""

    def randn(*shape: int) -> torch.Tensor:
        if str(device) == "meta":
            return torch.empty(shape, device=device, dtype=dtype)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)

    x = randn(batch, config.in_channels, *sample_size)
    timesteps = torch.full((batch,), 500.0, device=device)
    context = randn(batch, context_tokens or 77, config.context_width) if config.use_spatial_transformer else None
    y: torch.Tensor | None = None
    if config.num_classes == "sequential":
        y = randn(batch, config.adm_in_channels)  # type: ignore[arg-type]
    elif config.num_classes == "continuous":
        y = randn(batch, 1)
    elif config.num_classes is not None:
        y = torch.zeros(batch, dtype=torch.long, device=device)
    return {"x": x, "timesteps": timesteps, "context": context, "y": y}


# ---- recording ----------------------------------------------------------------------------------------------
def _spec(value: Any) -> list[dict[str, Any]]:
    """Shapes and dtypes of every tensor in a (nested) argument."""
    if isinstance(value, torch.Tensor):
        return [{"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _spec(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _spec(v)]
    return []


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


class TraceTimeout(RuntimeError):
    """A trace ran past its time limit."""


class _FlopAndMemoryMode(TorchDispatchMode):
    """Counts FLOPs per (module, kind) and tracks live activation bytes, at dispatch."""

    def __init__(self, stack: list[str], deadline: float | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.deadline = deadline
        self.ops = 0
        self.flops: dict[str, dict[str, int]] = {}
        self.live = 0
        self.peak = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        self.ops += 1
        if self.deadline is not None and self.ops % 256 == 0 and time.monotonic() > self.deadline:
            raise TraceTimeout("the trace ran past its time limit")
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        formula = flop_registry.get(packet)
        if formula is not None:
            count = formula(*args, **kwargs, out_val=out)
            kind = _OP_KIND.get(packet.__name__, "other")
            bucket = self.flops.setdefault(self.stack[-1], {})
            bucket[kind] = bucket.get(kind, 0) + count
        # Activation memory: count each newly allocated tensor (not views) until Python frees it.
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and not t._is_view():
                n = t.numel() * t.element_size()
                self.live += n
                weakref.finalize(t, self._free, n)
        self.peak = max(self.peak, self.live)
        return out


def _module_role(name: str, module: nn.Module, attr: str, block_roles: dict[str, str]) -> str:
    if name in block_roles:
        return block_roles[name]
    kind = type(module).__name__
    if kind == "CrossAttention":
        if attr == "attn1" and not getattr(module, "_context_fed", False):
            return "self_attention"
        return "cross_attention"
    return _ROLE_BY_NAME.get(attr) or _ROLE_BY_CLASS.get(kind, kind.lower())


def _build(config: UNetConfig, device: torch.device | str, dtype: torch.dtype | None) -> UNetModel:
    with torch.device(device):
        model = UNetModel(config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    for block in model.modules():
        # Mark the attn1 of blocks with self-attention disabled: it attends to the context (SD x4 upscaler).
        if type(block).__name__ == "BasicTransformerBlock" and block.disable_self_attn:
            block.attn1._context_fed = True  # type: ignore[attr-defined]
    return model.eval()


def _record_structure(
    model: UNetModel, inputs: dict[str, torch.Tensor | None], deadline: float | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Run the meta forward once with hooks; return the node list and the peak activation bytes."""
    names = {m: n for n, m in model.named_modules()}
    calls: dict[str, dict[str, Any]] = {}
    stack: list[str] = [""]
    order = [0]

    def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
        path = names[module]
        calls.setdefault(path, {"inputs": _spec(args) + _spec(kwargs), "call_order": order[0]})
        order[0] += 1
        stack.append(path)

    def post(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        path = stack.pop()
        rec = calls[path]
        rec.setdefault("outputs", _spec(output))
        rec.setdefault("activation_bytes", _nbytes(output))

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    mode = _FlopAndMemoryMode(stack, deadline)
    try:
        mode.live = sum(_nbytes(v) for v in inputs.values())
        with torch.no_grad(), mode:
            model(**inputs)
    finally:
        for h in handles:
            h.remove()

    block_map = model.block_map
    block_roles = {p: b.role for p, b in block_map.items()}
    nodes: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    for path, module in model.named_modules():
        parent = path.rpartition(".")[0] if path else None
        attr = path.rpartition(".")[2]
        top = _top_level(path)
        info = block_map.get(top) if top else None
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        rec = calls.get(path, {})
        own_flops = mode.flops.get(path, {})
        node = {
            "path": path,
            "name": attr if path else "",
            "kind": type(module).__name__,
            "role": _module_role(path, module, attr, block_roles),
            "parent": parent,
            "children": [f"{path}.{c}" if path else c for c, _ in module.named_children()],
            "stage": info.stage
            if info
            else ("down" if path == "input_blocks" else "up" if path == "output_blocks" else None),
            "level": info.level if info else None,
            "inputs": rec.get("inputs"),
            "outputs": rec.get("outputs"),
            "called": path in calls,
            "call_order": rec.get("call_order"),
            "params_own": own_params,
            "params": own_params,
            "flops_own": sum(own_flops.values()),
            "flops_by_op": {"conv": 0, "linear": 0, "attention": 0, "other": 0},
            "activation_bytes": rec.get("activation_bytes", 0),
            "time_ms": None,
        }
        for kind, count in own_flops.items():
            node["flops_by_op"][kind] += count
        nodes.append(node)
        by_path[path] = node

    # Sum parameters and FLOPs up the tree (children come after their parent in named_modules order).
    for node in reversed(nodes):
        parent = node["parent"]
        if parent is not None:
            p = by_path[parent]
            p["params"] += node["params"]
            for kind, count in node["flops_by_op"].items():
                p["flops_by_op"][kind] += count
    for node in nodes:
        node["flops"] = sum(node["flops_by_op"].values())
        node["macs"] = node["flops"] // 2
        # Containers the forward walks by hand (a ResBlock's in_layers when it resamples): take shapes from
        # their first and last called children so that every node shows what flows through it.
        if not node["called"] and node["children"]:
            called = [by_path[c] for c in node["children"] if by_path[c]["called"]]
            if called:
                node["inputs"] = called[0]["inputs"]
                node["outputs"] = called[-1]["outputs"]
                node["activation_bytes"] = called[-1]["activation_bytes"]
    return nodes, mode.peak


def _top_level(path: str) -> str | None:
    if not path:
        return None
    head, _, rest = path.partition(".")
    if head in ("input_blocks", "output_blocks"):
        index = rest.partition(".")[0]
        return f"{head}.{index}" if index else None
    return head


# ---- timing -----------------------------------------------------------------------------------------------
def run_memory_bytes(params: int, peak_activation_bytes: int, device: str, dtype: torch.dtype) -> int:
    """Memory a timed run needs on `device`: the weights at `dtype` plus the peak activations (at `dtype`), with 20%
    headroom for the allocator and kernel workspaces; on the CPU also the float32 copy the model is built in before
    it is cast (it is the same tensor when the run is in float32)."""
    elem = torch.empty((), dtype=dtype).element_size()
    build = params * 4 if device == "cpu" and elem != 4 else 0
    return int((params * elem + peak_activation_bytes) * 1.2) + build


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


class MemoryLimitError(RuntimeError):
    """A timed run would not fit in the device's free memory."""


def _time_modules(
    model: UNetModel,
    inputs: dict[str, torch.Tensor | None],
    device: torch.device,
    repeats: int,
    warmup: int,
    progress: Progress | None,
) -> tuple[dict[str, float], list[float]]:
    """Median per-module times (ms) from hooked runs, and the unhooked forward times (ms)."""
    cuda = device.type == "cuda"
    names = {m: n for n, m in model.named_modules()}
    samples: dict[str, list[float]] = {n: [] for n in names.values()}
    starts: dict[str, Any] = {}
    pending: list[tuple[str, Any, Any]] = []

    def pre(module: nn.Module, args: tuple) -> None:
        path = names[module]
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            starts[path] = ev
        else:
            starts[path] = time.perf_counter()

    def post(module: nn.Module, args: tuple, output: Any) -> None:
        path = names[module]
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            pending.append((path, starts.pop(path), ev))
        else:
            samples[path].append((time.perf_counter() - starts.pop(path)) * 1e3)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    total = warmup + 2 * repeats
    step = 0
    forward_ms: list[float] = []

    def tick(phase: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(phase, step, total)

    with torch.inference_mode():
        for _ in range(warmup):
            model(**inputs)
            tick("warmup")
        sync()
        # Unhooked and hooked forwards alternate, so that both see the same machine state: the unhooked ones give
        # the honest end-to-end time, the hooked ones the per-module times.
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(**inputs)
            sync()
            forward_ms.append((time.perf_counter() - t0) * 1e3)
            tick("run")
            handles = [m.register_forward_pre_hook(pre) for m in names]
            handles += [m.register_forward_hook(post) for m in names]
            try:
                model(**inputs)
                sync()
            finally:
                for h in handles:
                    h.remove()
            for path, a, b in pending:
                samples[path].append(a.elapsed_time(b))
            pending.clear()
            tick("run")
    return {p: statistics.median(v) for p, v in samples.items() if v}, forward_ms


# ---- the entry point --------------------------------------------------------------------------------------
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    key = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}.get(dtype, dtype)
    if key not in _DTYPES:
        raise ConfigError("dtype", f"must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[key]


def trace_unet(
    config: UNetConfig | str,
    *,
    sample_size: tuple[int, ...] | None = None,
    batch: int = 1,
    context_tokens: int | None = None,
    device: str = "meta",
    dtype: str | torch.dtype | None = None,
    repeats: int = 3,
    warmup: int = 1,
    state_dict: dict[str, torch.Tensor] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    time_limit_s: float | None = None,
) -> Trace:
    """Trace one forward pass of the UNet described by `config` (or a preset name).

    sample_size is the latent size (H, W), by default the preset's reference input; context_tokens defaults to
    the preset's (77 for text models). On "meta" nothing is allocated and time_ms stays null; on "cpu" or
    "cuda" the model is built with seeded random weights (or `state_dict`) and every module is timed.
    time_limit_s bounds the meta pass (TraceTimeout past it).
    """
    preset = None
    if isinstance(config, str):
        preset = config
        if config not in PRESETS:
            raise ConfigError("preset", f"unknown preset {config!r}; known: {sorted(PRESETS)}")
        config = PRESETS[config].config
    else:
        preset = _preset_for(config)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError("batch", f"must be a positive integer, got {batch!r}")
    if context_tokens is not None and (
        isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or context_tokens < 1
    ):
        raise ConfigError("context_tokens", f"must be a positive integer, got {context_tokens!r}")
    if context_tokens is None and config.use_spatial_transformer:
        context_tokens = PRESETS[preset].context_tokens if preset else 77
    sample_size = tuple(sample_size) if sample_size is not None else default_sample_size(config, preset)
    config.check_sample_size(sample_size)
    torch_dtype = parse_dtype(dtype)
    if device not in ("meta", "cpu", "cuda"):
        raise ConfigError("device", f"must be 'meta', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA is not available on this machine")
    if device == "cpu" and torch_dtype == torch.float16:
        raise ConfigError("dtype", "float16 is for CUDA; use float32 or bfloat16 on the CPU")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError("repeats", f"must be a positive integer, got {repeats!r}")

    # 1. Structure, shapes and FLOPs on the meta device.
    if progress:
        progress("building", 0, 1)
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None
    with _META_LOCK:
        meta_model = _build(config, "meta", torch_dtype)
        meta_inputs = make_inputs(config, sample_size, batch, context_tokens, "meta", torch_dtype)
        nodes, peak_activations = _record_structure(meta_model, meta_inputs, deadline)
    elem = torch.empty((), dtype=torch_dtype).element_size()
    params = nodes[0]["params"]
    totals: dict[str, Any] = {
        "params": params,
        "param_bytes": params * elem,
        "flops": nodes[0]["flops"],
        "attention_flops": nodes[0]["flops_by_op"]["attention"],
        "macs": nodes[0]["macs"],
        "macs_without_attention": (nodes[0]["flops"] - nodes[0]["flops_by_op"]["attention"]) // 2,
        "activation_bytes": sum(n["activation_bytes"] for n in nodes if not n["children"]),
        "peak_activation_bytes": peak_activations,
        "peak_memory_bytes": params * elem + peak_activations,
        "time_ms": None,
    }
    inputs_spec = {
        "batch": batch,
        "sample_size": list(sample_size),
        "context_tokens": context_tokens if config.use_spatial_transformer else None,
        "image_size": [s * PRESETS[preset].latent_factor for s in sample_size] if preset else None,
        **{k: (_spec(v)[0] if v is not None else None) for k, v in meta_inputs.items()},
    }
    by_path = {n["path"]: n for n in nodes}
    blocks = [
        {
            "path": b.path,
            "stage": b.stage,
            "level": b.level,
            "role": b.role,
            "factor": b.factor,
            "in_channels": b.in_channels,
            "out_channels": b.out_channels,
            "skip_from": b.skip_from,
            "attention": [a.kind for a in b.attention],
            "resample": b.resample,
        }
        for b in meta_model.block_map.values()
    ]
    skips = []
    for src, dst in meta_model.skips:
        shape = by_path[src]["outputs"][0]["shape"]
        concat = by_path[dst]["inputs"][0]["shape"]
        skips.append({"from": src, "to": dst, "shape": shape, "concat_shape": concat})
    trace = Trace(
        config, preset, device, str(torch_dtype).removeprefix("torch."), inputs_spec, nodes, blocks, skips, totals
    )
    del meta_model, meta_inputs

    # 2. Optionally, a timed run on a real device.
    if device != "meta":
        dev = torch.device(device)
        need = run_memory_bytes(params, peak_activations, device, torch_dtype)
        free = available_bytes(dev)
        if need > free:
            raise MemoryLimitError(
                f"a timed {device} run needs about {need / 2**30:.1f} GiB (weights + activations); "
                f"only {free / 2**30:.1f} GiB is free"
            )
        if progress:
            progress("building", 0, 1)
        torch.manual_seed(seed)
        model = _build(config, "cpu", None)
        if state_dict is not None:
            model.load_state_dict(state_dict, strict=True)
        model = model.to(device=dev, dtype=torch_dtype)
        gen = torch.Generator().manual_seed(seed)
        inputs = make_inputs(config, sample_size, batch, context_tokens, dev, torch_dtype, gen)
        if progress:
            progress("building", 1, 1)
        times, forward_ms = _time_modules(model, inputs, dev, repeats, warmup, progress)
        for node in nodes:
            node["time_ms"] = times.get(node["path"])
        totals["time_ms"] = statistics.median(forward_ms)
        trace.timing = {
            "repeats": repeats,
            "warmup": warmup,
            "forward_ms": statistics.median(forward_ms),
            "forward_ms_all": forward_ms,
            "hooked_forward_ms": times.get(""),
            "clock": "cuda events" if dev.type == "cuda" else "perf_counter",
        }
        del model, inputs
    if progress:
        progress("done", 1, 1)
    return trace
