"""Lone surrogates anywhere in a JSON body (issue 21, item 5): `"\\ud800"` is valid JSON but no character, so it
can be neither UTF-8 encoded nor quoted back as it came. Every POST route answers 200 or a 4xx naming the field,
never a 500 from rendering its answer. Bounded: a handful of mutations of one valid body per route."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.checkpoint_headers import make_header, preset_shapes
from tests.lora_factory import kohya_metadata, lora_tensors
from tests.lora_factory import make_header as lora_header

LONE = ("\ud800", "\udfff", "a\udc00b")
PER_ROUTE = 14


def _bodies() -> list[tuple[str, Any]]:
    lora = lora_tensors("sd1", select=lambda m: m.path.startswith("input_blocks.1."))
    return [
        ("/api/trace", {"preset": "tiny", "image_size": [64, 64]}),
        ("/api/trace", {"diffusers_config": {"sample_size": 8, "block_out_channels": [32, 64]}}),
        ("/api/summary", {"preset": "tiny"}),
        ("/api/names", {"preset": "tiny"}),
        ("/api/names/block-weights", {"preset": "tiny", "spec": "IN01,OUT02"}),
        ("/api/diffusers-names", {"preset": "tiny"}),
        ("/api/profile", {"preset": "tiny", "device": "nope"}),
        ("/api/checkpoint/detect", make_header(preset_shapes("tiny"))),
        ("/api/lora/detect", lora_header(lora, kohya_metadata("sd1", algo="lora"))),
        ("/api/lora/detect", {"header": lora_header(lora), "alphas": {"lora_unet_x": 1}}),
        ("/api/activations/catalog", {"preset": "tiny"}),
        ("/api/activations/capture", {"preset": "tiny", "prompt": "a cat", "points": ["@outputs"], "seed": 1}),
        ("/api/activations/export", {"preset": "tiny", "export": ["unet-out"], "prompt": "a cat"}),
    ]


def _mutations(body: Any) -> Iterator[Any]:
    """The body with a lone surrogate as a new key, in place of each key and in each string, at every depth."""
    if isinstance(body, dict):
        for lone in LONE[:2]:
            yield {**body, lone: 1}
        for key, value in body.items():
            yield {(k + LONE[2] if k == key else k): v for k, v in body.items()}
            for inner in itertools.islice(_mutations(value), 4):
                yield {**body, key: inner}
    elif isinstance(body, list):
        for i, value in enumerate(body[:3]):
            for inner in itertools.islice(_mutations(value), 2):
                yield [*body[:i], inner, *body[i + 1 :]]
    elif isinstance(body, str):
        yield from (body + lone for lone in LONE)


@pytest.mark.parametrize(("path", "body"), _bodies(), ids=[f"{p}-{i}" for i, (p, _) in enumerate(_bodies())])
def test_lone_surrogates_are_never_a_500(client, path: str, body: Any) -> None:
    for mutated in itertools.islice(_mutations(body), PER_ROUTE):
        # json.dumps writes a lone surrogate as the escape \udXXX: valid JSON text, pure ASCII on the wire.
        r = client.post(path, content=json.dumps(mutated), headers={"content-type": "application/json"})
        assert r.status_code < 500, (path, mutated if len(str(mutated)) < 300 else "...", r.text[:300])
        if r.status_code >= 400:
            err = r.json()
            assert err["field"], (path, err)
            assert err["detail"] == f"{err['field']}: {err['reason']}"


def test_a_lone_surrogate_in_a_header_names_the_tensor(client) -> None:
    for path in ("/api/checkpoint/detect", "/api/lora/detect"):
        r = client.post(path, content='{"a\\ud800": {"dtype": "F32"}}', headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.json()["field"] == "a\\ud800"
        assert r.json()["reason"] == "holds a lone surrogate (\\ud800-\\udfff), which is not a character"


def test_lone_surrogates_inside_lora_arguments_are_escaped(client) -> None:
    # ss_network_args is JSON inside a string: its escapes decode only when the arguments are read.
    metadata = kohya_metadata("sd1")
    metadata["ss_network_args"] = '{"algo\\ud800": "x\\udfff"}'
    header = lora_header(lora_tensors("sd1", select=lambda m: m.path.startswith("input_blocks.1.")), metadata)
    r = client.post("/api/lora/detect", json=header)
    assert r.status_code == 200
    assert r.json()["network"]["args"] == {"algo\\ud800": "x\\udfff"}
