"""One LoRA module's tensors: which algorithm they are, its rank, whether they fit a layer, and the FLOPs they add.

Rank and scale follow ComfyUI (`comfy/weight_adapter/lora.py`, `loha.py`, `lokr.py`) and kohya-ss/sd-scripts
(`networks/lora.py`): the weight delta is scaled by alpha / rank, where the rank is `lora_down.shape[0]` (LoRA,
LoCon), `hada_w1_b.shape[0]` (LoHa) or the inner size of the factorised LoKr matrix (`lokr_w2_b.shape[0]`, else
`lokr_w1_b.shape[0]`); a file without an alpha means scale 1, and so does a LoKr with both matrices whole (no rank).

Shapes (linear [out, in]; conv [out, in, kh, kw]):

    LoRA / LoCon   down [r, in(, kh, kw)]  up [out, r(, 1, 1)]      CP core: down [r, in, 1, 1], mid [r, r, kh, kw]
    LoHa           w1_a [out, r]  w1_b [r, in*kh*kw]  (same for w2)  Tucker: w_a [r, out], w_b [r, in], t [r, r, kh, kw]
    LoKr           delta = kron(w1, w2), w = w_a @ w_b or whole; Tucker w2: t2 [r, r, kh, kw], w2_a [r, a], w2_b [r, b]
    full           diff: the layer's weight shape; diff_b its bias;  norm: w_norm, b_norm the norm's weight, bias

FLOPs (2 per multiply-add, as the trace counts them) of the module run unmerged beside the layer for one forward:
a low-rank LoRA runs down and up as their own layers (down keeps the layer's kernel and stride; with a CP core the
down is 1x1 at the input's resolution and the core carries the kernel); every other algorithm is a dense delta of
the layer's shape applied as a second layer. Building that delta from its factors, the scale, the sum and DoRA's
weight normalisation are not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..checkpoint.header import TensorInfo

Algo = Literal["lora", "loha", "lokr", "full", "norm"]
ALGO_PARTS: dict[Algo, frozenset[str]] = {
    "lora": frozenset({"down", "up", "mid"}),
    "loha": frozenset({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"}),
    "lokr": frozenset({"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"}),
    "full": frozenset({"diff", "diff_b"}),
    "norm": frozenset({"w_norm", "b_norm"}),
}
SHARED_PARTS = frozenset({"alpha", "dora_scale"})
# What each algorithm needs at least (LoKr: each matrix whole or as a pair; checked in `missing_parts`).
_REQUIRED: dict[Algo, tuple[str, ...]] = {
    "lora": ("down", "up"),
    "loha": ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"),
    "lokr": (),
    "full": (),
    "norm": (),
}


@dataclass(frozen=True)
class ModuleTensors:
    """The tensors of one stem, by part, and the algorithm they belong to."""

    algo: Algo
    parts: dict[str, TensorInfo]

    @property
    def tucker(self) -> bool:
        return bool({"mid", "hada_t1", "lokr_t2"} & set(self.parts))

    @property
    def dora(self) -> bool:
        return "dora_scale" in self.parts

    @property
    def params(self) -> int:
        """Elements of every tensor but the alpha scalar."""
        return sum(t.numel for name, t in self.parts.items() if name != "alpha")

    @property
    def rank(self) -> int | None:
        p = self.parts
        if self.algo == "lora":
            return p["down"].shape[0]
        if self.algo == "loha":
            return p["hada_w1_b"].shape[0]
        if self.algo == "lokr":
            if "lokr_w2_b" in p:
                return p["lokr_w2_b"].shape[0]
            if "lokr_w1_b" in p:
                return p["lokr_w1_b"].shape[0]
        return None

    def missing_parts(self) -> list[str]:
        have = set(self.parts)
        missing = [name for name in _REQUIRED[self.algo] if name not in have]
        if self.algo == "lokr":
            for w in ("lokr_w1", "lokr_w2"):
                if w not in have and not {f"{w}_a", f"{w}_b"} <= have:
                    missing.append(f"{w} (or {w}_a and {w}_b)")
        if self.algo == "full" and "diff" not in have and "diff_b" not in have:
            missing.append("diff")
        if self.algo == "norm" and "w_norm" not in have:
            missing.append("w_norm")
        return missing

    def delta_shape(self) -> tuple[int, int] | None:
        """(out, elements per output) of the weight delta the tensors make, when the algorithm has one."""
        p = self.parts
        if self.algo == "lora":
            return p["up"].shape[0], math.prod(p["down"].shape[1:]) * _kernel(p.get("mid"))
        if self.algo == "loha":
            a, b = p["hada_w1_a"].shape, p["hada_w1_b"].shape
            if "hada_t1" in p:
                return a[1], b[1] * _kernel(p["hada_t1"])
            return a[0], b[1] if len(b) == 2 else math.prod(b[1:])
        if self.algo == "lokr":
            w1, w2 = _lokr_factor(p, "lokr_w1"), _lokr_factor(p, "lokr_w2")
            if w1 is None or w2 is None:
                return None
            return w1[0] * w2[0], math.prod(w1[1:]) * math.prod(w2[1:])
        if self.algo == "full" and "diff" in p:
            s = p["diff"].shape
            return (s[0], math.prod(s[1:])) if s else None
        return None

    def fits(self, weight: tuple[int, ...]) -> bool:
        """Do the tensors patch a layer with this weight shape (out, in, kernel, and the kind of layer)?"""
        p = self.parts
        if self.algo == "norm":
            return p["w_norm"].shape == weight
        if self.algo == "full" and "diff" in p:
            return p["diff"].shape == weight
        if self.algo == "full":
            return p["diff_b"].shape == weight[:1]
        if self.algo == "lora":
            return self._lora_fits(weight)
        delta = self.delta_shape()
        return delta is not None and delta == (weight[0], math.prod(weight[1:]))

    def _lora_fits(self, weight: tuple[int, ...]) -> bool:
        down, up, mid = self.parts["down"].shape, self.parts["up"].shape, self.parts.get("mid")
        r = down[0] if down else -1
        if len(weight) == 2:  # Linear: 2-D factors only
            return len(down) == 2 and len(up) == 2 and down == (r, weight[1]) and up == (weight[0], r)
        kernel = weight[2:]
        if mid is not None:
            ok_down = down == (r, weight[1], *(1,) * len(kernel)) and mid.shape == (r, r, *kernel)
        else:
            ok_down = down == (r, weight[1], *kernel)
        return ok_down and up == (weight[0], r, *(1,) * len(kernel))

    def flops(self, in_positions: int, out_positions: int) -> int:
        """FLOPs of the unmerged module for one forward; positions are batch x tokens or batch x pixels."""
        p = self.parts
        if self.algo == "lora":
            down, up = p["down"], p["up"]
            if "mid" in p:
                return 2 * (in_positions * down.numel + out_positions * (p["mid"].numel + up.numel))
            return 2 * out_positions * (down.numel + up.numel)
        delta = self.delta_shape()
        return 2 * out_positions * delta[0] * delta[1] if delta else 0


def _kernel(core: TensorInfo | None) -> int:
    return math.prod(core.shape[2:]) if core is not None and len(core.shape) > 2 else 1


def _lokr_factor(p: dict[str, TensorInfo], w: str) -> tuple[int, ...] | None:
    """The shape of one Kronecker factor: whole, a @ b, or (w2 only) the Tucker rebuild."""
    if w in p:
        return p[w].shape
    a, b = p.get(f"{w}_a"), p.get(f"{w}_b")
    if a is None or b is None:
        return None
    if w == "lokr_w2" and "lokr_t2" in p:
        return (a.shape[1], b.shape[1], *p["lokr_t2"].shape[2:])
    return (a.shape[0], *b.shape[1:])


def algo_of(parts: set[str]) -> Algo | None:
    """The algorithm a stem's parts belong to (the first that holds any of them), or None."""
    for algo, names in ALGO_PARTS.items():
        if parts & names:
            return algo
    return None
