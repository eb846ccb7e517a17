"""`sdunet-explorer train-twin`: train the twin from scratch with the shipped recipe (or a smaller one)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_train_twin(sub: argparse._SubParsersAction) -> None:
    from sdunet_core.twin.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train-twin",
        help="train the twin (the small SD-shaped model) on the drawn world; the defaults are the shipped recipe",
    )
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"scenes per step (default {d.batch})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the weights, noise and training scenes")
    p.add_argument("--offset-noise", type=float, default=d.offset_noise, help="offset noise std (default %(default)s)")
    p.add_argument("--pyramid-noise", type=float, default=d.pyramid_noise,
                   help="pyramid noise discount per level, 0 for none (default %(default)s)")  # fmt: skip
    p.add_argument("--objective", choices=("epsilon", "v_prediction"), default=d.objective,
                   help="what the UNet predicts (default %(default)s)")  # fmt: skip
    p.add_argument("--zero-terminal-snr", action=argparse.BooleanOptionalAction, default=d.zero_terminal_snr,
                   help="rescale the schedule to zero signal at t = 999 (default %(default)s)")  # fmt: skip
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads (default {d.threads})")
    p.add_argument("--out", type=Path, default=Path("twin.safetensors"), help="weights file; the record goes beside it")
    p.set_defaults(func=_train_twin)


def _train_twin(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sdunet_core.twin.train import TrainConfig, train

    if args.steps < 1 or args.batch < 1:
        raise SystemExit("error: --steps and --batch must be at least 1")
    cfg = replace(
        TrainConfig(),
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        offset_noise=args.offset_noise,
        pyramid_noise=args.pyramid_noise,
        objective=args.objective,
        zero_terminal_snr=args.zero_terminal_snr,
    )
    cfg = replace(cfg, log_every=min(cfg.log_every, max(1, cfg.steps // 10)))
    record = train(cfg, args.out)
    summary = {k: record[k] for k in ("steps_done", "wall_seconds")} | {"final_loss": record["loss_curve"][-1]["loss"]}
    print(json.dumps(summary | {"weights": str(args.out)}))
    return 0
