"""`sdunet-explorer export-site DIR`: the page as a static site that needs no Python behind it (issue 27).

The site is the page's HTML (the Jinja template rendered once, with relative URLs), the static assets, plotly.js
from the installed package, the lessons, and the API's answers to the requests the page would make for the chosen
presets and sizes: traces, names, activation catalogs, comparisons, scaling, the twin and its generations of the
shipped captions. Every answer comes from the real app (a TestClient on `create_app()`), so a file holds exactly
what the server says. Answers are stored under `data/`, one file per request, named by the request's key; the rule
is mirrored by static/js/static_site.js (which reads them) and a browser test drives an exported site with every
/api/ request blocked, so any drift between the two shows.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import resource
import shutil
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.commands.site_writer import AnswerWriter, Timings

log = logging.getLogger(__name__)

DATA_DIR = "data/"  # where the answers go, relative to the page: the content of <meta name="sdunet-static">
# The pairs every comparison of the released families is offered for (both orders are written).
FAMILY_PAIRS = (("sd1", "sd2"), ("sd1", "sdxl-base"), ("sd2", "sdxl-base"))
# A bigger default would break the budget the issue sets (60 MB on disk, 25 MB gzipped).
BUDGET_BYTES = 60 * 2**20
BUDGET_GZIP_BYTES = 25 * 2**20


# ---- the request key (mirrored by static/js/static_site.js) ---------------------------------------------------


def js_number(x: float) -> str:
    """A float as JavaScript's Number#toString writes it (JSON.stringify does the same): both take the shortest
    digits that read back to the same double, but lay them out differently (1.0 → "1", 1e-05 → "0.00001")."""
    if not math.isfinite(x):
        return "null"  # what JSON.stringify writes for NaN and ±Infinity
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, e = repr(abs(x)).partition("e")  # Python's repr: the same shortest digits as JavaScript's
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    lead = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.lstrip("0").rstrip("0")
    k, n = len(digits), len(whole) + int(e or 0) - lead  # the value is 0.<digits> × 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = f"0.{'0' * -n}{digits}"
    else:
        exp = n - 1
        text = f"{digits[0]}{'.' + digits[1:] if k > 1 else ''}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + text


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces, numbers as JavaScript writes them: canonical() in static_site.js."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{canonical(value[k])}" for k in sorted(value)) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def request_key(method: str, path: str, query: Sequence[tuple[str, str]] = (), body: Any = None) -> str:
    """[method, path, query pairs sorted by name (stable), body] as canonical JSON: requestKey() in static_site.js."""
    pairs = sorted(((k, str(v)) for k, v in query), key=lambda kv: kv[0])
    return canonical([method, path, [list(p) for p in pairs], body])


def fnv1a64(text: str) -> str:
    """FNV-1a, 64 bits, of the UTF-8 bytes, as 16 hex digits."""
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# ---- what the page asks for --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One request the page makes, as the page makes it (method, path, query pairs, JSON body)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    text: bool = False  # a text/plain answer (the summary table)

    @property
    def name(self) -> str:
        key = request_key(self.method, self.path, self.query, self.body)
        return f"{fnv1a64(key)}.{'txt' if self.text else 'json'}"


def scaling_sizes(step: int, here: int) -> list[int]:
    """The sizes the page's scaling chart asks for: charts.js scalingSizes(step) plus the size on screen (the page's
    features.js updateScaling). Math.round rounds halves up, hence floor(x + 0.5)."""
    out: list[int] = []
    for s in (256, 384, 512, 768, 1024, 1280, 1536, 2048):
        v = max(step, math.floor(s / step + 0.5) * step)
        if v not in out:
            out.append(v)
    return sorted({*out, here})


@dataclass
class Report:
    """What an export wrote: counts and sizes, for the command's last line and the bench."""

    answers: int = 0
    files: int = 0
    bytes: int = 0
    gzip_bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's and its worker processes' CPU time: what a busy machine does not change
    skipped: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)

    def line(self) -> str:
        mib = 2**20
        return (
            f"{self.answers} answers, {self.files} files, {self.bytes / mib:.1f} MiB "
            f"({self.gzip_bytes / mib:.1f} MiB gzipped) in {self.seconds:.0f} s ({self.cpu_seconds:.0f} s of CPU)"
        )


class _Asker:
    """Asks through the shared writer in the Ask form (the request's file name is its key's hash)."""

    def __init__(self, writer: AnswerWriter) -> None:
        self.writer = writer

    def ask(self, ask: Ask) -> Any:
        return self.writer.ask(ask.name, ask.method, ask.path, list(ask.query), ask.body, ask.text)


def _render_page(out: Path) -> None:
    """The template rendered once with relative URLs, so the site works from any folder of any static host."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from app.modules import module_closure
    from app.routes.pages import page_limits
    from app.settings import get_settings

    settings = get_settings()
    env = Environment(loader=FileSystemLoader(settings.templates_dir), autoescape=select_autoescape())
    routes = {"plotly_js": "vendor/plotly.min.js"}

    def url_for(name: str, path: str = "") -> str:
        return f"static/{path}" if name == "static" else routes[name]

    env.globals["url_for"] = url_for
    html = env.get_template("index.html").render(
        settings=replace(settings, weights=None),  # the page of a site has no weights file
        limits=page_limits(settings),
        modules=module_closure(settings.static_dir / "js"),
        static_site=DATA_DIR,
    )
    (out / "index.html").write_text(html)


def _copy_assets(out: Path) -> None:
    from app.routes.pages import PLOTLY_JS
    from app.settings import get_settings

    static = get_settings().static_dir
    shutil.copytree(static, out / "static", ignore=shutil.ignore_patterns("*.map", ".*"))
    (out / "vendor").mkdir()
    shutil.copy2(PLOTLY_JS, out / "vendor" / "plotly.min.js")


def _sizes_on_disk(root: Path) -> tuple[int, int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 6)) for p in files)
    return len(files), raw, zipped


def export_site(
    out: Path,
    presets: Iterable[str] | None = None,
    sizes: Iterable[int] = (),
    captions: Sequence[str] | None = None,
) -> Report:
    """Write the static site to `out` (which must not exist or be empty). presets: those whose traces, names,
    catalogs, comparisons and scaling go in (default: every UNet preset); sizes: image sizes in pixels traced beside
    each preset's reference size; captions: the twin's generations at the Generate view's defaults (default: the
    shipped example captions; [] for none)."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from sdunet_core import PRESETS, ConfigError

    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    chosen = list(presets) if presets is not None else list(PRESETS)
    for name in chosen:
        if name not in PRESETS:
            raise ConfigError("presets", f"{name!r} is not a preset; choose from {', '.join(PRESETS)}")
    extra = sorted(set(sizes))
    for s in extra:
        if s <= 0:
            raise ConfigError("sizes", f"{s} is not a size in pixels")
    if out.exists() and any(out.iterdir()):
        raise ConfigError("dir", f"{out} is not empty: export into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    data = out / DATA_DIR
    data.mkdir()

    report = Report()
    phase = report.timings.phase
    with phase("the page and its assets"):
        _render_page(out)
        _copy_assets(out)
    started = time.perf_counter()
    with TestClient(create_app(), base_url="http://localhost") as client:
        report.timings.phases["the app's start (trace workers warm, the twin)"] = time.perf_counter() - started
        writer = AnswerWriter(client, report.timings)
        w = _Asker(writer)
        with phase("listings (presets, sources)"):
            listed = w.ask(Ask("GET", "/api/presets"))
            w.ask(Ask("GET", "/api/controlnet/presets"))
            kinds = w.ask(Ask("GET", "/api/source"))
            for kind in kinds:
                w.ask(Ask("GET", f"/api/source/{kind}"))
        entry = {p["name"]: p for p in listed}
        # The twin generates in its own worker process and the presets are traced in the trace workers: the two
        # run side by side, and the presets go two at a time (one per core; each request waits on its worker).
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="export") as pool:
            twin_phase = "twin generations (beside the presets)"
            twin = pool.submit(_timed, phase, twin_phase, _export_twin, w, captions, report)
            with phase("presets (traces, names, catalogs, summaries, scaling)"):
                for done in [pool.submit(_export_preset, w, name, entry[name], extra, report) for name in chosen]:
                    done.result()
            with phase("comparisons"):
                asks = [Ask("GET", "/api/compare", (("a", a), ("b", b))) for a, b in _pairs(chosen)]
                for done in [pool.submit(w.ask, ask) for ask in asks]:
                    done.result()
            with phase("waiting for the twin"):
                twin.result()
    with phase("writing the answers and the index"):
        index = writer.write(data)
        (data / "index.json").write_text(json.dumps({"answers": index}, separators=(",", ":"), sort_keys=True))
    with phase("measuring the size on disk and gzipped"):
        report.answers = len(index)
        report.files, report.bytes, report.gzip_bytes = _sizes_on_disk(out)
    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = _cpu_seconds() - cpu0
    if report.bytes > BUDGET_BYTES or report.gzip_bytes > BUDGET_GZIP_BYTES:
        log.warning("the site is past the budget (60 MiB, 25 MiB gzipped): %s", report.line())
    return report


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its ended children (the app's workers end with it)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(phase: Any, name: str, fn: Any, *args: Any) -> None:
    with phase(name):
        fn(*args)


def _export_preset(w: _Asker, name: str, entry: dict[str, Any], extra: list[int], report: Report) -> None:
    """A preset's traces (reference size, asked with and without it, and the extra sizes), its names, diffusers
    names, activation catalog, summary table and scaling data at each size, as the page asks for them."""
    trace = w.ask(Ask("POST", "/api/trace", body={"preset": name}))
    here = (trace.get("input") or {}).get("image_size")
    traces = [trace]
    if here:
        w.ask(Ask("POST", "/api/trace", body={"preset": name, "image_size": here}))
        for s in extra:
            if s == here[0]:
                continue
            try:
                t = w.ask(Ask("POST", "/api/trace", body={"preset": name, "image_size": [s, s]}))
            except RuntimeError as exc:  # a size the model's levels do not divide: the page says so too
                report.skipped.append(f"{name}@{s}: {exc}")
                continue
            traces.append(t)
    w.ask(Ask("POST", "/api/names", body={"preset": name}))
    if trace.get("config"):
        w.ask(Ask("POST", "/api/diffusers-names", body={"config": trace["config"]}))
    for t in traces:
        size = (t.get("input") or {}).get("image_size")
        if not size:
            continue
        w.ask(Ask("POST", "/api/summary", (("depth", "2"),), {"preset": name, "image_size": size}, text=True))
        w.ask(Ask("POST", "/api/activations/catalog", body={"preset": name, "image_size": size}))
        if entry.get("latent_factor"):
            deepest = max([1, *(b["factor"] for b in t["blocks"])])
            sizes = scaling_sizes(entry["latent_factor"] * deepest, size[0])
            w.ask(Ask("GET", "/api/scaling", (("preset", name), ("sizes", ",".join(map(str, sizes))))))


def _pairs(chosen: list[str]) -> list[tuple[str, str]]:
    """Each variant with its parent, and the released families with each other, in both orders, where both went in."""
    from sdunet_core import PRESETS

    pairs = [(PRESETS[n].variant_of, n) for n in chosen if PRESETS[n].variant_of in chosen]
    pairs += [(a, b) for a, b in FAMILY_PAIRS if a in chosen and b in chosen]
    return [p for a, b in pairs for p in ((a, b), (b, a))]


def _export_twin(w: _Asker, captions: Sequence[str] | None, report: Report) -> None:
    """The twin's description and a generation of each caption at the Generate view's defaults (the body exactly
    as generate.js sends it)."""
    from sdunet_core.twin import weights_shipped, world

    if not weights_shipped():
        log.warning("the twin's weights are not installed: the site has no Generate answers")
        return
    # The defaults are read first; the description that goes into the site is asked after the generations, once
    # the twin is loaded, so that it says so (as it did when the generations came last).
    d = w.writer.client.get("/api/twin").json()["defaults"]
    for caption in world.EXAMPLES if captions is None else captions:
        body = {"prompt": caption, **{k: d[k] for k in ("seed", "steps", "guidance", "sampler")}}
        try:
            w.ask(Ask("POST", "/api/generate", body=body))
        except RuntimeError as exc:  # past the capture's time limit on a busy machine: the rest of the site stands
            report.skipped.append(f"the generation of {caption!r}: {exc}")
    w.ask(Ask("GET", "/api/twin"))


def default_cache_env() -> None:
    """Two trace workers (the export asks for two presets at once, one per core of a small machine) unless the
    environment says otherwise."""
    os.environ.setdefault("SDUNET_TRACE_WORKERS", "2")
