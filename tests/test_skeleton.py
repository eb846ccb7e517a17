"""The ground floor: health, the page, the CLI, the Dockerfile's command."""

from __future__ import annotations

import re
import subprocess
import sys

import torch

from tests.conftest import ROOT


def test_health(client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    cuda = torch.cuda.is_available()
    assert r.json() == {
        "status": "ok",
        "torch": torch.__version__,
        "device": "cuda" if cuda else "cpu",
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


def test_index_page_loads_js_from_static(client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert "<h1>SD UNet Explorer</h1>" in r.text
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', r.text)
    assert scripts and all("/static/" in s or "/vendor/" in s for s in scripts)
    for src in scripts:
        path = re.sub(r"^https?://[^/]+", "", src)
        assert client.get(path).status_code == 200, src
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_plotly_is_served_locally(client) -> None:
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 1_000_000


def test_cli_help_lists_serve() -> None:
    out = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in out


def test_dockerfile_cmd_names_a_real_subcommand() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "python:3.11-slim" in text
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.M)
    assert cmd, "Dockerfile needs an exec-form CMD"
    import json

    argv = json.loads(cmd.group(1))
    assert argv[0] == "sdunet-explorer"
    from app.cli import build_parser

    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    assert args.host == "0.0.0.0"


def test_dockerfile_copies_what_exists_and_installs_the_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    sources = [src for line in re.findall(r"^COPY\s+(.+)$", text, re.M) for src in line.split()[:-1]]
    assert sources, "the Dockerfile copies nothing"
    for src in sources:
        assert (ROOT / src).exists(), src
    assert "EXPOSE 8000" in text
    assert re.search(r"pip install[^\n]* \.(\s|$)", text), "the image must install the package itself"
    # Templates and static files are found through SDUNET_ROOT in a non-editable install.
    assert "SDUNET_ROOT=/app" in text and "COPY templates" in text and "COPY static" in text


def test_no_path_traversal_through_static_or_source(client) -> None:
    for path in (
        "/static/../app/main.py",
        "/static/%2e%2e/app/main.py",
        "/static/..%2Fapp%2Fmain.py",
        "/static/js/../../app/settings.py",
        "/api/source/..%2F..%2Fapp%2Fmain",
        "/api/source/%2e%2e",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "get_settings" not in r.text and "create_app" not in r.text


def test_security_headers_and_no_cors_by_default(client) -> None:
    r = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "access-control-allow-origin" not in r.headers
