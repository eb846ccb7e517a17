"""The ground floor: health, the page, the CLI, the Dockerfile's command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import torch

from app import __version__
from app.settings import get_settings
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
    assert re.search(r"<h1[^>]*>SD UNet Explorer</h1>", r.text)
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


def _dockerfile_stages() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    return [stage for stage in re.split(r"^(?=FROM\s)", text, flags=re.M) if stage.startswith("FROM")]


def test_dockerfile_builds_the_wheel_from_what_it_needs() -> None:
    build, *_ = _dockerfile_stages()
    name = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", build, re.I)
    assert name, "the first stage (named) builds the wheel"
    copied = [src for line in re.findall(r"^COPY\s+(.+)$", build, re.M) for src in line.split()[:-1]]
    for src in copied:
        assert (ROOT / src).exists(), src
    # Everything the build backend reads: pyproject, the readme it embeds, and every folder the wheel takes.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"])
    assert needed <= set(copied), sorted(needed - set(copied))
    assert re.search(r"^RUN pip wheel [^\n]*--no-deps[^\n]* \.$", build, re.M)


def test_dockerfile_image_installs_the_wheel_and_no_sources() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2
    build_name = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", stages[0], re.I).group(1)
    image = stages[-1]
    assert image.startswith("FROM python:3.11-slim")
    copies = re.findall(r"^COPY\s+(.+)$", image, re.M)
    assert copies and all(c.startswith(f"--from={build_name} ") for c in copies), copies
    assert re.search(r"^RUN pip install [^\n]*\.whl", image, re.M), "the image must install the built wheel"
    assert "EXPOSE 8000" in image


def test_the_checkout_serves_its_own_page_folders() -> None:
    # A checkout or an editable install (make test, CI): the page comes from the top-level folders, not a copy.
    settings = get_settings()
    assert settings.static_dir == ROOT / "static" and settings.templates_dir == ROOT / "templates"


def test_version_is_printed_and_is_the_apis(client) -> None:
    out = subprocess.run([sys.executable, "-m", "app", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"sdunet-explorer {__version__}"
    assert client.get("/openapi.json").json()["info"]["version"] == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


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
