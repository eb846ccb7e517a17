"""The `sdunet-explorer` command: serve the app, trace or summarise a model, inspect a checkpoint."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from app import __version__

log = logging.getLogger("sdunet_explorer")


def _serve(args: argparse.Namespace) -> int:
    import os

    if args.host in ("0.0.0.0", "::"):
        log.warning(
            "Listening on %s: the explorer is reachable from other machines; name the hosts it may be reached by "
            "in SDUNET_ALLOWED_HOSTS.",
            args.host,
        )
    os.environ["SDUNET_HOST"] = args.host
    os.environ["SDUNET_PORT"] = str(args.port)
    if args.weights:
        from sdunet_core.checkpoint.weights import open_weights

        # Fail here, clearly, rather than inside the server; the app gets the same (cached) object.
        weights = open_weights(str(os.path.abspath(args.weights)))
        log.info("weights: %s (%s, preset %s)", args.weights, weights.detection.format, weights.detection.preset)
        os.environ["SDUNET_WEIGHTS"] = str(os.path.abspath(args.weights))
    from app.server import run
    from app.settings import get_settings

    get_settings.cache_clear()  # read the environment as set here
    run(get_settings(), access_log=args.access_log)
    return 0


def _trace_args(args: argparse.Namespace) -> dict:
    return {
        "sample_size": tuple(args.size) if args.size else None,
        "batch": args.batch,
        "context_tokens": args.tokens,
    }


def _trace_model(args: argparse.Namespace) -> tuple[Any, str, tuple[int, ...] | None]:
    """The preset name, or the UNetConfig of a diffusers config.json (exactly one of the two), its label, and the
    config's own sample_size (the default input)."""
    from sdunet_core import ConfigError
    from sdunet_core.model.diffusers_config import config_from_diffusers, default_sample_size

    if (args.preset is None) == (args.diffusers_config is None):
        raise ConfigError("preset", "give a preset name or --diffusers-config FILE (exactly one)")
    if args.preset is not None:
        return args.preset, args.preset, None
    path = Path(args.diffusers_config)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError("diffusers_config", f"{path} is not JSON: {exc}") from None
    return config_from_diffusers(raw), path.name, default_sample_size(raw)


def _trace(args: argparse.Namespace) -> int:
    from sdunet_core.control.presets import CONTROLNET_PRESETS
    from sdunet_core.tracer.summary import format_summary, human
    from sdunet_core.tracer.trace import trace_unet

    model, name, default_size = _trace_model(args)
    kwargs = _trace_args(args)
    kwargs["sample_size"] = kwargs["sample_size"] or default_size
    if args.preset in CONTROLNET_PRESETS:
        from sdunet_core.control.trace import trace_controlnet

        if args.device != "meta":
            print("error: ControlNets are traced on the meta device only (no timed runs yet)", file=sys.stderr)
            return 2
        trace = trace_controlnet(args.preset, dtype=args.dtype, **kwargs)
    else:
        trace = trace_unet(model, device=args.device, dtype=args.dtype, repeats=args.repeats, **kwargs)
    if args.json:
        with open(args.json, "wb") as f:
            f.write(trace.to_json())
        log.info("wrote %s", args.json)
    t = trace.totals
    print(
        f"{name}: {t.params:,} params, {human(t.flops)} FLOPs "
        f"({human(t.attention_flops)} attention), peak ~{human(t.peak_memory_bytes, 'B')}"
    )
    if t.time_ms is not None:
        print(f"forward {t.time_ms:.2f} ms on {trace.device} ({trace.dtype}, median of {args.repeats})")
    if trace.control is not None:
        targets = ", ".join(f"{i.target} x{i.scale:g}" for i in trace.control.injections)
        print(f"control image {trace.control.hint.shape}; added to the {trace.control.base_preset} UNet at {targets}")
    if not args.json:
        print(format_summary(trace, depth=1))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from sdunet_core.control.presets import CONTROLNET_PRESETS
    from sdunet_core.tracer.summary import format_summary
    from sdunet_core.tracer.trace import trace_unet

    if args.preset in CONTROLNET_PRESETS:
        from sdunet_core.control.trace import trace_controlnet

        print(format_summary(trace_controlnet(args.preset, **_trace_args(args)), depth=args.depth))
        return 0
    print(format_summary(trace_unet(args.preset, **_trace_args(args)), depth=args.depth))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from sdunet_core.checkpoint.detect import CheckpointError, detect_unet
    from sdunet_core.checkpoint.header import read_header
    from sdunet_core.lora import looks_like_lora

    try:
        header = read_header(args.file)
        from sdunet_core.control.detect import detect_control

        control = detect_control(header)
        if control is not None:
            return _inspect_control(args, control)
        if looks_like_lora(header):
            from app.commands.lora import inspect_lora

            return inspect_lora(args, header)
        detection = detect_unet(header)
    except CheckpointError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(detection.to_dict(), indent=1))
        return 0
    d = detection.to_dict()
    names = "original names" if d["format"] == "ldm" else "diffusers names"
    also = f" (same shapes: {', '.join(d['matching_presets'])})" if len(d["matching_presets"]) > 1 else ""
    print(f"UNet under {d['prefix']!r} ({names}): preset {d['preset'] or 'none'}{also}")
    sizes = ", ".join(f"{dtype} {n / 2**20:,.1f} MiB" for dtype, n in d["bytes_by_dtype"].items())
    print(f"  {d['num_parameters']:,} parameters; {sizes}")
    # A variant the original constructor cannot build (no middle block, ...) is shown in our field names.
    for key, value in (d["ldm_params"] if d["ldm_params"] is not None else d["config"]).items():
        print(f"  {key}: {json.dumps(value)}")
    if detection.exact:
        print("  loads into UNetModel(config) with strict=True: no key missing, unexpected or mismatched")
    for label in ("missing", "unexpected"):
        if d[label]:
            print(f"  {len(d[label])} {label}: {', '.join(d[label][:5])}{' ...' if len(d[label]) > 5 else ''}")
    for m in d["mismatched"][:5]:
        print(f"  mismatched {m['key']}: expected {m['expected']}, found {m['found']}")
    for note in d["notes"]:
        print(f"  note: {note}")
    if d["other_keys"]:
        print("  other tensors: " + ", ".join(f"{k} ({n})" for k, n in d["other_keys"].items()))
    return 0


def _inspect_control(args: argparse.Namespace, report: Any) -> int:
    """A ControlNet, T2I-Adapter or control-LoRA in a few lines: kind, family, size, where it injects."""
    import json

    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=1))
        return 0
    names = "original names" if report.layout == "ldm" else "diffusers names"
    print(f"{report.kind} under {report.prefix!r} ({names}) for {report.family or 'an unknown family'}: "
          f"preset {report.preset or 'none'}")  # fmt: skip
    sizes = ", ".join(f"{dtype} {n / 2**20:,.1f} MiB" for dtype, n in report.bytes_by_dtype.items())
    print(f"  {report.num_parameters:,} parameters; {sizes}")
    for point in report.injections:
        print(f"  output {point.index}: {point.channels} channels at 1/{point.image_factor} -> {point.target} "
              f"({point.added_to})")  # fmt: skip
    if report.exact:
        print("  loads into ControlNetModel(config) with strict=True: no key missing, unexpected or mismatched")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


def _features(args: argparse.Namespace) -> int:
    """Capture the chosen activations for each image (or a seeded noise latent) and write one .safetensors."""
    from sdunet_core import load_preset
    from sdunet_core.activations.conditioning import InputError
    from sdunet_core.activations.export import export_activations, to_bytes
    from sdunet_core.activations.session import CaptureSpec, Explorer

    if bool(args.weights) == bool(args.preset):
        print("error: give --weights FILE (real weights) or --preset NAME (seeded random weights)", file=sys.stderr)
        return 2
    explorer = (
        Explorer.from_checkpoint(args.weights) if args.weights else Explorer.random(load_preset(args.preset).config)
    )
    explorer.to(args.device)
    factor = explorer.latent_factor
    sample = (args.size[0] // factor, args.size[1] // factor) if args.size else None
    if sample is None:
        from sdunet_core.tracer.trace import default_sample_size

        sample = tuple(default_sample_size(explorer.config, args.preset))
    images = [(name, Path(name).read_bytes()) for name in args.image] or [("seeded-noise", None)]
    spec = CaptureSpec(points=[], keep=args.points, timestep=args.t, prompt=args.prompt, seed=args.seed,
                       sample_size=sample)  # fmt: skip
    try:
        tensors, metadata = export_activations(explorer, spec, images)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_bytes(to_bytes(tensors, metadata))
    if explorer.random_weights:
        log.warning("random weights: the activations show shapes, not what a trained model computes")
    for name, t in tensors.items():
        print(f"{name}: {list(t.shape)}")
    log.info("wrote %s (%d points, %d images)", args.out, len(tensors), len(images))
    return 0


def _add_input_args(p: argparse.ArgumentParser, optional_preset: bool = False) -> None:
    if optional_preset:
        p.add_argument("preset", nargs="?", help="a preset name (sd1, sd2, sdxl-base, ...), or --diffusers-config")
    else:
        p.add_argument("preset", help="a preset name (sd1, sd2, sdxl-base, ...)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="latent size (default: the preset's)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--tokens", type=int, default=None, help="context tokens (default: the preset's, 77 for text)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdunet-explorer", description="See the UNet at the heart of Stable Diffusion."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the explorer page and its API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--weights",
        metavar="FILE",
        help="a local checkpoint: profiles use its weights and the page shows per-block weight statistics",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (off: it costs throughput)")
    serve.set_defaults(func=_serve)

    trace = sub.add_parser("trace", help="trace a preset or a diffusers config: totals, and the JSON with --json")
    _add_input_args(trace, optional_preset=True)
    trace.add_argument(
        "--diffusers-config", metavar="FILE", help="a diffusers UNet2DConditionModel config.json instead of a preset"
    )
    trace.add_argument("--json", metavar="FILE", help="write the trace JSON here")
    trace.add_argument("--device", default="meta", choices=["meta", "cpu", "cuda"], help="meta: no weights, no timing")
    trace.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    trace.add_argument("--repeats", type=int, default=3, help="timed forwards on cpu/cuda")
    trace.set_defaults(func=_trace)

    summary = sub.add_parser("summary", help="a torchinfo-like table of a preset")
    _add_input_args(summary)
    summary.add_argument("--depth", type=int, default=2, help="tree depth to show (default 2)")
    summary.set_defaults(func=_summary)

    inspect = sub.add_parser(
        "inspect", help="detect the UNet architecture of a checkpoint, or what a LoRA file patches"
    )
    inspect.add_argument("file", help="a .safetensors, .ckpt or .pt file (only its header or pickle is read)")
    inspect.add_argument("--json", action="store_true", help="print the whole detection as JSON")
    inspect.add_argument("--preset", help="LoRA: match against this preset instead of the detected family")
    inspect.add_argument("--flops", action="store_true", help="LoRA: trace the model to count the FLOPs it adds")
    inspect.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="LoRA: image size for --flops (default: the preset's)",
    )
    inspect.set_defaults(func=_inspect)

    features = sub.add_parser("features", help="capture activations of one forward; write them as .safetensors")
    features.add_argument("--weights", metavar="FILE", help="a full single-file checkpoint (UNet, VAE, text encoders)")
    features.add_argument("--preset", help="without weights: a preset with seeded random weights")
    features.add_argument("--image", nargs="*", default=[], metavar="IMG", help="images (none: a seeded noise latent)")
    features.add_argument("--t", type=int, default=261, help="DDPM timestep, 0-999 (default 261, DIFT's)")
    features.add_argument("--points", nargs="+", required=True, help="catalog names or groups (@outputs, ...)")
    features.add_argument("--prompt", default="", help="the text prompt (default empty)")
    features.add_argument("--seed", type=int, default=0, help="seed of the noise")
    features.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image size in pixels")
    features.add_argument("--out", default="activations.safetensors", help="output file")
    features.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the UNet runs")
    features.set_defaults(func=_features)

    from app.commands.twin import add_train_twin

    add_train_twin(sub)
    from app.commands.site import add_export_site

    add_export_site(sub)
    from app.commands.probe import add_probe

    add_probe(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from sdunet_core import ConfigError
    from sdunet_core.checkpoint.header import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
