"""The vocabulary of a block's flow: the steps its forward performs, as each block class states them in `flow()`.

A flow is a small data-flow list: each step makes one named value (`out`) from values made before it (`inputs`)
or from the module's own inputs (`x`; `emb`, the time embedding; `context`, the context tokens; `timesteps`, `y`;
a ControlNet's `hint`).
A `module` step runs a child (its path relative to the block, which is also the name of its value); every other
step is an operation the forward performs between children: residual adds (`residual_add`: its first input is the
value carried past the others, so the span runs from where that value was made), the time embedding added or
scale-shifted, reshapes to and from tokens, attention over q, k and v, concatenations. The last step's value is
the module's output. Kept apart from the schema, as the categories are, so that the block classes can state their
flow without importing the pydantic models.
"""

from __future__ import annotations

from typing import Any, Literal

FlowOp = Literal[
    "module",
    "residual_add",
    "add",
    "add_embedding",
    "scale_shift",
    "to_tokens",
    "to_map",
    "attention",
    "gate",
    "interpolate",
    "concat",
    "sinusoid",
]

# What each op means, for docs/trace-schema.md, in the order of FlowOp.
FLOW_OPS: dict[str, str] = {
    "module": "a child module runs on `inputs` (its first input is the running tensor)",
    "residual_add": "the residual add: `inputs[0]` (the block's input, or the value a residual branch split off) "
    "plus the branch's result",
    "add": "an elementwise sum of `inputs` (e.g. the class embedding added to the time embedding)",
    "add_embedding": "the projected time embedding (`inputs[1]`) added to every pixel of `inputs[0]`",
    "scale_shift": "the projected time embedding split in two halves, scale and shift: "
    "`inputs[0]` · (1 + scale) + shift",
    "to_tokens": "a feature map reshaped to tokens, e.g. `[B, C, H, W]` → `[B, H·W, C]` (the text says which)",
    "to_map": "tokens reshaped back to a feature map",
    "attention": "softmax(QKᵀ / √d) · V over the heads, from the q, k and v `inputs` (or one qkv tensor)",
    "gate": "the input's two halves, value · GELU(gate)",
    "interpolate": "nearest-neighbour interpolation to twice the height and width",
    "concat": "`inputs` concatenated on the channel axis (an up block's running tensor and its skip)",
    "sinusoid": "the timesteps as sinusoids of `model_channels` frequencies",
}


def step(op: FlowOp, out: str, inputs: list[str], text: str | None, module: str | None = None) -> dict[str, Any]:
    """One flow step as the trace stores it (`schema.FlowStep`); `module` only for op `module`, `text` where the
    op and the module do not say it all."""
    extra = {"module": module} if module else {}
    return {"op": op, "out": out, "inputs": inputs, **extra, **({"text": text} if text else {})}


def run(module: str, *inputs: str, text: str | None = None) -> dict[str, Any]:
    """A `module` step: the child at `module` runs on `inputs`; its value is named after it."""
    return step("module", module, list(inputs), text, module)


def chain(modules: list[str], first: str) -> list[dict[str, Any]]:
    """Children that run one after the other, each on the previous one's output (the first on `first`)."""
    steps = []
    for m in modules:
        steps.append(run(m, first))
        first = m
    return steps


def embedding_steps(class_conditional: bool) -> tuple[list[dict[str, Any]], str]:
    """The steps that make the time embedding every block reads (the sinusoid, `time_embed`, and for a
    class-conditional model `label_emb` added to it), as a UNet's and a ControlNet's forward both begin; with the
    name of the value that carries it."""
    steps = [
        step("sinusoid", "t_emb", ["timesteps"], "sinusoidal timestep embedding"),
        run("time_embed", "t_emb"),
    ]
    if not class_conditional:
        return steps, "time_embed"
    steps += [run("label_emb", "y"), step("add", "emb", ["time_embed", "label_emb"], "add the class embedding")]
    return steps, "emb"
