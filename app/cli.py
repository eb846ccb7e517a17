"""The `sdunet-explorer` command: serve the app (later: trace, summary, inspect)."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("sdunet_explorer")


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    if args.host in ("0.0.0.0", "::"):
        log.warning("Listening on %s: the explorer is reachable from other machines.", args.host)
    os.environ["SDUNET_HOST"] = args.host
    os.environ["SDUNET_PORT"] = str(args.port)
    # One worker: a torch app keeps its models and caches in one process.
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=1, log_level="info")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdunet-explorer", description="See the UNet at the heart of Stable Diffusion."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the explorer page and its API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
