"""A torchinfo-like text table of a trace: the module tree to a depth, output shape, parameters and FLOPs."""

from __future__ import annotations

from ..schema import Trace


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M'."""
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def format_summary(trace: Trace, depth: int = 2) -> str:
    rows = [("Module (kind)", "Output shape", "Params", "FLOPs", "Attn FLOPs")]
    for node in trace.nodes:
        if node.category == "stage":
            continue
        # Depth counts from the top-level block (input_blocks.N is one level down although it has one dot).
        level = 0 if node.block is None else 1 + node.path.count(".") - node.block.count(".")
        if level > depth:
            continue
        name = node.name if level > 1 else (node.path or node.kind)
        # A ControlNet returns one residual per injection: say how many rather than show the first.
        out = (
            (node.outputs[0].shape if len(node.outputs) == 1 else f"{len(node.outputs)} tensors")
            if node.outputs
            else "-"
        )
        rows.append(
            (
                "  " * level + f"{name} ({node.kind})",
                str(out),
                f"{node.params:,}",
                human(node.flops),
                human(node.flops_by_op.attention),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))
    text = [line]
    for i, row in enumerate(rows):
        text.append(
            "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if i == 0:
            text.append(line)
    t = trace.totals
    inp = trace.input
    text += [
        line,
        f"Input: x {inp.x.shape}"
        + (f", context {inp.context.shape}" if inp.context else "")
        + (f", y {inp.y.shape}" if inp.y else "")
        + (f", hint {trace.control.hint.shape}" if trace.control else ""),
        f"Total params: {t.params:,} ({human(t.param_bytes, 'B')} at {trace.dtype})",
        f"Total FLOPs: {human(t.flops)} (attention matmuls {human(t.attention_flops)}); "
        f"MACs without attention: {human(t.macs_without_attention)}",
        f"Peak memory estimate: {human(t.peak_memory_bytes, 'B')} "
        f"(weights + {human(t.peak_activation_bytes, 'B')} activations; "
        f"{human(t.peak_activation_bytes_fused, 'B')} with a fused attention kernel)",
    ]
    if t.time_ms is not None:
        text.append(f"Forward time: {t.time_ms:.2f} ms on {trace.device} (median)")
    text.append(line)
    return "\n".join(text)
