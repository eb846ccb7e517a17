"""`sdunet-explorer probe`: linear probes of the twin's (or a checkpoint's) activation points, as JSON (and CSV)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_probe(sub: argparse._SubParsersAction) -> None:
    from sdunet_core.probes import TARGETS

    p = sub.add_parser("probe", help="which activations are discriminative: linear probes on the twin's world")
    p.add_argument("--points", nargs="+", default=["@outputs"], help="catalog names or groups (default @outputs)")
    p.add_argument("--targets", nargs="+", default=list(TARGETS), help=f"of {', '.join(TARGETS)} (default all)")
    p.add_argument("--t", type=int, nargs="+", default=[250], help="timesteps, 0-999 (default 250)")
    p.add_argument("--n-images", type=int, default=256, help="pictures drawn, a quarter held out (default 256)")
    p.add_argument("--random-weights", action="store_true", help="probe seeded random weights (marked so)")
    p.add_argument(
        "--weights", type=Path, metavar="FILE", help="probe this single-file SD checkpoint (UNet, VAE, text encoder)"
    )
    p.add_argument("--out", type=Path, default=Path("probes.json"), help="the result as JSON")
    p.add_argument("--csv", type=Path, help="also write the rows as CSV")
    p.set_defaults(func=_probe)


def _probe(args: argparse.Namespace) -> int:
    from sdunet_core.activations.conditioning import InputError
    from sdunet_core.probes import ProbeSpec, as_csv, run

    if args.weights is not None and not args.weights.is_file():
        raise SystemExit(f"error: --weights: {args.weights} is not a file")
    spec = ProbeSpec(args.points, args.targets, args.t, args.n_images,
                     weights="random" if args.random_weights else "shipped",
                     model="checkpoint" if args.weights else "twin",
                     checkpoint=str(args.weights) if args.weights else None)  # fmt: skip

    def progress(phase: str, done: int, total: int) -> None:
        if done == total or done % 64 == 0:
            log.info("%s: %d/%d", phase, done, total)

    try:
        result = run(spec, progress)
    except InputError as exc:
        raise SystemExit(f"error: --{exc.field.replace('_', '-')}: {exc.reason}") from None
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.csv:
        args.csv.write_text(as_csv(result))
    for row in result["best"]:
        print(f"t={row['t']:>3} {row['target']:<10} best {row['point']:<45} {row['accuracy']:.3f} "
              f"(control {row['control_accuracy']:.3f}, chance {row['chance']:.3f})")  # fmt: skip
    print(
        json.dumps(
            {"out": str(args.out), "rows": len(result["rows"]), "seconds": round(result["timings"]["total_s"], 1)}
        )
    )
    return 0
