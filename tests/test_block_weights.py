"""Block-weight specs as the block-weighting tools read them: presets, vectors of each accepted length, IDs and
ranges, and a ConfigError on `spec` naming what is wrong (with the accepted lengths) for everything else."""

from __future__ import annotations

import pytest

from sdunet_core import PRESETS, ConfigError
from sdunet_core.names import parse_block_weights
from sdunet_core.names.ids import block_weight_data

SD1 = PRESETS["sd1"].config
XL = PRESETS["sdxl-base"].config


def _block(weights, path: str) -> float | None:  # type: ignore[no-untyped-def]
    return next(b["weight"] for b in weights.blocks if b["path"] == path)


@pytest.mark.parametrize("name", list(block_weight_data().presets))
def test_every_preset_sets_its_17_ids_and_zeroes_the_rest(name: str) -> None:
    data = block_weight_data()
    w = parse_block_weights(name.lower(), SD1)  # preset names are taken in any case
    listed = dict(zip(data.id_lists["17"], data.presets[name].values, strict=True))
    assert (w.kind, w.scheme, w.id_list) == ("preset", "lora_block_weight", "17")
    assert w.ids == {i: listed.get(i, 0.0) for i in data.id_lists["26"]}
    assert w.text_encoder == listed["BASE"]
    assert _block(w, "input_blocks.5") == listed["IN05"] and _block(w, "input_blocks.3") == 0.0
    assert w.untouched == ["time_embed", "out"] and _block(w, "out") == 1.0
    assert w.accepted_lengths == [17, 25, 26]


def test_a_preset_on_sdxl_keeps_the_tools_reading() -> None:
    # The tool spreads the 17 values over the 26 IDs: SDXL's IN00, IN03, IN06 and OUT00-02 get 0, OUT09-11 are unused.
    w = parse_block_weights("ALL", XL)
    assert [i for i, v in w.ids.items() if v == 0] == ["IN00", "IN03", "IN06", "OUT00", "OUT01", "OUT02"]
    assert w.ignored == ["OUT09", "OUT10", "OUT11"]
    assert w.untouched == ["time_embed", "label_emb", "out"]
    assert any("IN00, IN03, IN06, OUT00, OUT01, OUT02" in n for n in w.notes)


def test_vectors_of_each_length() -> None:
    lists = block_weight_data().id_lists
    values = [round(0.1 * i, 1) for i in range(26)]
    w = parse_block_weights(",".join(map(str, values)), SD1)
    assert (w.kind, w.id_list) == ("vector", "26") and list(w.ids.values()) == values
    w = parse_block_weights(" ".join(["0.5"] * 17), SD1)  # spaces separate as well as commas
    assert w.ids["IN01"] == 0.5 and w.ids["IN00"] == 0.0
    xl12 = parse_block_weights(",".join(["1"] * 12), XL)
    assert [i for i, v in xl12.ids.items() if v] == list(lists["12"])
    xl20 = parse_block_weights(",".join(str(i) for i in range(20)), XL)
    assert xl20.ids == {i: float(n) for n, i in enumerate(lists["20"])}


def test_25_numbers_are_the_merge_weights() -> None:
    values = [float(i) for i in range(25)]
    w = parse_block_weights(",".join(map(str, values)), SD1)
    assert (w.scheme, w.text_encoder, w.ids["BASE"], w.untouched) == ("merge", None, None, [])
    assert _block(w, "time_embed") == 0.0  # follows IN00
    assert _block(w, "input_blocks.0") == 0.0 and _block(w, "middle_block") == 12.0
    assert _block(w, "output_blocks.11") == 24.0 and _block(w, "out") == 24.0  # out follows OUT11
    unclip = parse_block_weights(",".join(map(str, values)), PRESETS["sd2-unclip-h"].config)
    assert _block(unclip, "label_emb") is None  # the base alpha, which the 25 numbers do not set


def test_ids_and_ranges() -> None:
    w = parse_block_weights("IN05,OUT05", SD1)
    assert [i for i, v in w.ids.items() if v] == ["IN05", "OUT05"] and w.kind == "ids"
    forward = parse_block_weights("IN04-OUT05", SD1)
    backward = parse_block_weights("out05-in4", SD1)  # either order, any case, one digit
    assert forward.ids == backward.ids
    on = [i for i, v in forward.ids.items() if v]
    assert on[0] == "IN04" and on[-1] == "OUT05" and len(on) == 8 + 1 + 6
    assert parse_block_weights("MID", SD1).ids["M00"] == 1.0
    inverted = parse_block_weights("NOT IN09-OUT02", SD1)
    assert [i for i, v in inverted.ids.items() if not v] == ["IN09", "IN10", "IN11", "M00", "OUT00", "OUT01", "OUT02"]
    assert parse_block_weights("BASE", XL).text_encoder == 1.0


@pytest.mark.parametrize(
    ("spec", "config", "reason"),
    [
        ("1,2,3", SD1, "has 3 numbers; this model accepts 17, 25, 26"),
        (",".join(["1"] * 17), XL, "has 17 numbers; this model accepts 12, 20"),
        ("", SD1, "is empty; give a preset name, IDs, a range or a vector of numbers"),
        ("IN11", XL, "IN11 is not a block of this model"),
        ("IN04-FOO", SD1, "'FOO' is not a block ID"),
        ("IN04--OUT05", SD1, "'IN04--OUT05' is not an ID or a range like IN04-OUT05"),
        ("1,R,0", SD1, "mixes numbers with 'R'"),
        ("1,nan", SD1, "'nan' is not a finite number"),
        ("NOT", SD1, "NOT needs IDs or ranges after it"),
        ("x" * 5000, SD1, "is 5000 characters long, over the limit of 4000"),
        (",".join(["1"] * 26), PRESETS["ldm-churches"].config, "vectors and presets are defined for the SD 1.x/2.x"),
    ],
)
def test_bad_specs_say_why(spec: str, config, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        parse_block_weights(spec, config)
    assert err.value.field == "spec"
    assert err.value.reason.startswith(reason), err.value.reason


def test_models_without_a_layout_take_ids() -> None:
    w = parse_block_weights("IN12-OUT00", PRESETS["ldm-churches"].config)
    assert [i for i, v in w.ids.items() if v] == ["IN12", "IN13", "IN14", "M00", "OUT00"]
    assert w.accepted_lengths == []
