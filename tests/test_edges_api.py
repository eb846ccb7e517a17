"""Safe defaults of a loopback tool and the one trace cache: Host allow-list,
JSON-only bodies, HEAD on GET routes, API docs from installed files, a preset's name kept end to end, and the
fast answer for repeated bodies going through the same cache as every other request."""

from __future__ import annotations

import re

import pytest

from sdunet_core import PRESETS


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000"])
def test_local_host_names_are_served(client, host: str) -> None:
    assert client.get("/api/health", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""])
def test_other_host_names_are_refused(client, host: str) -> None:
    # DNS rebinding: a page on evil.example resolves its name to 127.0.0.1; its requests carry its own Host.
    for method, path in (("GET", "/api/health"), ("GET", "/"), ("POST", "/api/trace")):
        r = client.request(method, path, headers={"host": host}, json={"preset": "tiny"})
        assert r.status_code == 400, (host, path)
        assert r.json() == {
            "detail": "host: this server does not serve that Host name",
            "field": "host",
            "reason": "this server does not serve that Host name",
        }


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
@pytest.mark.parametrize("path", ["/api/trace", "/api/checkpoint/detect", "/api/profile", "/api/diffusers-names"])
def test_post_bodies_must_be_json(client, path: str, kind: str | None) -> None:
    # The kinds a browser posts cross-site without asking the server first.
    headers = {"content-type": kind} if kind else {}
    r = client.post(path, content=b'{"preset": "tiny"}', headers=headers)
    assert r.status_code == 415
    assert r.json()["field"] == "content-type"


def test_json_with_a_charset_is_json(client) -> None:
    r = client.post(
        "/api/trace", content=b'{"preset": "tiny"}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/health", "/api/presets", "/api/presets/sd1", "/", "/static/js/main.js", "/vendor/plotly.min.js"]
)
def test_head_answers_like_get_without_a_body(client, path: str) -> None:
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers.get("content-length") == get.headers.get("content-length")


def test_api_docs_are_served_from_installed_files(client) -> None:
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        scripts = re.findall(r'<script src="([^"]+)"', r.text)
        assert scripts and all(s.startswith("/docs/") for s in scripts), scripts  # nothing from a CDN
        assert "<script>" not in r.text  # no inline script: CSP script-src 'self' allows every one of them
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "http" not in csp
        for src in [*scripts, *re.findall(r'href="([^"]+)"', r.text)]:
            asset = client.get(src)
            assert asset.status_code == 200 and len(asset.content) > 50, src
    assert client.get("/docs/assets/../../app/main.py").status_code == 404
    assert client.get("/docs/assets/core.py").status_code == 404


def test_a_preset_keeps_its_name(client) -> None:
    # sd2 and sd2-v are one network: the trace is labelled with the name asked for, at its reference input.
    r = client.post("/api/trace", json={"preset": "sd2-v"})
    assert r.status_code == 200
    body = r.json()
    assert body["preset"] == "sd2-v"
    assert body["input"]["image_size"] == [768, 768] and body["input"]["sample_size"] == [96, 96]
    assert client.post("/api/trace", json={"preset": "sd2", "image_size": [768, 768]}).json()["preset"] == "sd2"


def test_a_custom_config_gets_no_guessed_preset(client) -> None:
    r = client.post("/api/trace", json={"config": PRESETS["sd1"].config.to_dict(), "image_size": [256, 256]})
    assert r.status_code == 200
    assert r.json()["input"]["sample_size"] == [32, 32]


def test_repeated_bodies_are_answered_from_the_one_cache(client) -> None:
    store = client.app.state.traces
    body = b'{"preset": "tiny", "image_size": [192, 192]}'
    headers = {"content-type": "application/json"}
    first = client.post("/api/trace", content=body, headers=headers)
    assert first.status_code == 200
    hits = store.hits
    second = client.post("/api/trace", content=body, headers=headers)
    assert second.content == first.content and store.hits == hits + 1  # the store's own lookup, counted there
    # The same bytes are still checked for everything that is not in them: the Host and the content type.
    assert client.post("/api/trace", content=body, headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/api/trace", content=body, headers={**headers, "host": "evil.example"}).status_code == 400


def test_the_memory_cache_is_bounded_in_bytes(client) -> None:
    store = client.app.state.traces
    assert 0 < store.held_bytes <= store.memory_bytes
