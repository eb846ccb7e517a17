"""Installed like real software: the sdist and the wheel built from it carry the page, and the wheel installed in a
fresh virtual environment serves it from an empty directory, then stops without leaving a process behind.

The fresh environment gets only our wheel; torch and the other dependencies come from the environment running the
tests, through a .pth file written after the install (so nothing large is downloaded or copied, and pip never sees,
let alone touches, that environment). Deselect with `-m "not install"`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from app import __version__
from tests.harness import ROOT, serve

pytestmark = pytest.mark.install

PAGE_FOLDERS = ("static", "templates")


def _build(target: str, source: Path, out: Path) -> Path:
    """Build with the project's own backend (PEP 517 hooks, no isolation: hatchling comes with the test extra)."""
    code = f"import sys, hatchling.build as b; print(b.build_{target}(sys.argv[1]))"
    name = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=source, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    return out / name


def _files_under(folder: Path) -> set[str]:
    return {
        p.relative_to(folder.parent).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": comm may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every live process below `root` (children, grandchildren...), by pid, with its start time."""
    stats = {int(p.name): _proc_stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, stat in stats.items():
            if stat is not None and stat[1] == parent and pid not in found:
                found[pid] = stat[2]
                frontier.append(pid)
    return found


def _still_running(processes: dict[int, int]) -> list[int]:
    """The processes of `processes` (pid: start time) that still run: same pid and start time, not a zombie."""
    return [
        pid for pid, start in processes.items() if (stat := _proc_stat(pid)) and stat[2] == start and stat[0] != "Z"
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return "(gone)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist from the checkout, the wheel from the unpacked sdist (as `python -m build` does)."""
    out = tmp_path_factory.mktemp("dist")
    sdist = _build("sdist", ROOT, out)
    with tarfile.open(sdist) as tar:
        tar.extractall(out / "unpacked", filter="data")
    (source,) = (out / "unpacked").iterdir()
    return sdist, _build("wheel", source, out)


def test_sdist_and_wheel_carry_the_page_and_nothing_of_the_tests(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    page = set().union(*(_files_under(ROOT / folder) for folder in PAGE_FOLDERS))
    assert "static/js/main.js" in page and "templates/index.html" in page
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert page <= in_sdist, sorted(page - in_sdist)
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        metadata = whl.read(f"sdunet_explorer-{__version__}.dist-info/METADATA").decode()
    # The page's folders sit inside the app package, every file of them, vendored files and licences included.
    assert {f"app/{name}" for name in page} <= in_wheel, sorted({f"app/{n}" for n in page} - in_wheel)
    assert "sdunet_core/data/presets.json" in in_wheel
    assert {"sdunet_core/data/clip/bpe_simple_vocab_16e6.txt.gz", "sdunet_core/data/clip/LICENSE"} <= in_wheel
    assert {"app/__main__.py", "app/cli.py", "app/routes/pages.py", "sdunet_core/tracer/trace.py"} <= in_wheel
    assert {"sdunet_core/twin/data/twin.safetensors", "sdunet_core/twin/data/twin.json"} <= in_wheel
    tops = {name.split("/", 1)[0] for name in in_wheel}
    assert tops == {"app", "sdunet_core", f"sdunet_explorer-{__version__}.dist-info"}, tops
    assert not [name for name in in_wheel if "__pycache__" in name or name.endswith(".pyc")]
    assert re.search(rf"^Version: {re.escape(__version__)}$", metadata, re.M)


def _install(wheel: Path, where: Path) -> tuple[Path, Path]:
    """A fresh virtual environment with our wheel alone; (its python, its site-packages)."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    (site,) = (where / "lib").glob("python3*/site-packages")
    # Only now, after pip has run there: the dependencies from the environment running the tests, after its own.
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (site / "dependencies-from-the-test-environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python, site


def _check_page(http: httpx.Client) -> None:
    index = http.get("/")
    assert index.status_code == 200 and ">SD UNet Explorer</h1>" in index.text
    scripts = [re.sub(r"^https?://[^/]+", "", s) for s in re.findall(r'<script[^>]*src="([^"]+)"', index.text)]
    assert "/static/js/main.js" in scripts, scripts
    # The modules are preloaded from the installed files' imports; plotly.js is loaded by the page on its first chart.
    preloaded = re.findall(r'<link rel="modulepreload" href="[^"]*/static/js/([^"]+)"', index.text)
    assert "main.js" in preloaded and "plotly-loader.js" in preloaded, preloaded
    plotly = http.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    # Every file of static/ answers, with the bytes that were packed.
    for name in sorted(_files_under(ROOT / "static")):
        r = http.get(f"/{name}")
        assert r.status_code == 200 and r.content == (ROOT / name).read_bytes(), name
    assert http.get("/favicon.ico").status_code == 200
    assert http.get("/api/health").json()["status"] == "ok"
    trace = http.post("/api/trace", json={"preset": "tiny"})
    assert trace.status_code == 200 and trace.json()["totals"]["params"] > 0, trace.text[:300]
    # The CLIP vocabulary travels in the wheel: a prompt is encoded with nothing installed beside it.
    body = {"preset": "tiny", "sample_size": [16, 16], "points": ["unet-out"], "prompt": "a red cat"}
    captured = http.post("/api/activations/capture", json=body)
    assert captured.status_code == 200, captured.text[:300]
    assert any("red" in str(t) for t in captured.json()["tokens"]), captured.json()["tokens"]
    assert http.get("/openapi.json").json()["info"]["version"] == __version__


def test_the_installed_wheel_serves_the_page_from_an_empty_directory(built: tuple[Path, Path], tmp_path: Path) -> None:
    python, site = _install(built[1], tmp_path / "venv")
    command = python.parent / "sdunet-explorer"
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [python, "-c", "import app, sdunet_core; print(app.__file__); print(sdunet_core.__file__)"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where
    for argv in ([command, "--version"], [python, "-m", "app", "--version"]):
        out = subprocess.run(argv, cwd=empty, env=env, capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"sdunet-explorer {__version__}", argv

    with serve(env=env, log=tmp_path / "server.log", command=[str(command)], cwd=empty) as (url, server):
        with httpx.Client(base_url=url, timeout=60) as http:
            _check_page(http)
        children = _descendants(server.pid)  # the trace workers (started with the server) and their resource tracker
        assert any("multiprocessing" in _cmdline(pid) for pid in children), children
    log = (tmp_path / "server.log").read_text()
    # uvicorn re-raises the SIGTERM once it has shut down (-15); the harness's kill after a hung shutdown is -9.
    assert server.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log[-2000:]
    deadline = time.monotonic() + 10  # the resource tracker leaves once the last process holding its pipe is gone
    while (left := _still_running(children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left_behind = [f"{pid}: {_cmdline(pid)}" for pid in left]
    for pid in left:  # a failing run does not leave them to the next one
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left_behind, f"left behind after the server stopped: {left_behind}"
