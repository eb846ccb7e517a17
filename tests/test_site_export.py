"""`sdunet-explorer export-site`: the request key's JSON is JavaScript's (numbers as Number#toString writes them),
and bad input is refused before anything is written, naming the field. The site itself is driven in a browser by
tests/test_page_static_site.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.commands.site_export import canonical, export_site, fnv1a64, js_number, request_key

# What JavaScript's String(x) gives (node and Chromium agree; the ECMAScript Number::toString rules).
JS = {
    1e-05: "0.00001",
    1.5: "1.5",
    0.25: "0.25",
    1e22: "1e+22",
    1.5e-07: "1.5e-7",
    123456.7: "123456.7",
    1e21: "1e+21",
    1.23e-18: "1.23e-18",
    2.5e-06: "0.0000025",
    1e-06: "0.000001",
    1e-07: "1e-7",
    -0.3: "-0.3",
    3.0: "3",
    -0.0: "0",
    1e300: "1e+300",
    5e-324: "5e-324",
    1.2345678901234568e21: "1.2345678901234568e+21",
    float("nan"): "null",
}


@pytest.mark.parametrize(("x", "text"), list(JS.items()), ids=[repr(x) for x in JS])
def test_numbers_are_written_as_javascript_writes_them(x: float, text: str) -> None:
    assert js_number(x) == text


def test_the_key_sorts_keys_and_query_pairs_but_keeps_a_names_values_in_order() -> None:
    assert canonical({"b": 1, "a": [True, None, 2.0, "é"]}) == '{"a":[true,null,2,"é"],"b":1}'
    key = request_key("GET", "/api/x", [("z", "1"), ("a", "2"), ("z", "0")])
    assert key == '["GET","/api/x",[["a","2"],["z","1"],["z","0"]],null]'
    # The hash is FNV-1a 64 (its published test vectors).
    assert fnv1a64("") == "cbf29ce484222325"
    assert fnv1a64("a") == "af63dc4c8601ec8c"


def test_bad_input_is_refused_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sdunet_core import ConfigError

    with pytest.raises(ConfigError) as exc:
        export_site(tmp_path / "a", presets=["sd1", "sd9"])
    assert exc.value.field == "presets" and "'sd9'" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        export_site(tmp_path / "b", presets=["tiny"], sizes=[0])
    assert exc.value.field == "sizes"
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["export-site", str(full), "--presets", "tiny"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]  # nothing written beside what was there
    assert not (tmp_path / "a").exists()
    with pytest.raises(SystemExit):
        main(["export-site", str(tmp_path / "c"), "--sizes", "512,big"])
    assert "--sizes" in capsys.readouterr().err
