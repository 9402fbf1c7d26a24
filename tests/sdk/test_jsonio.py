"""The strict JSON grammar (docs/json.md): the shared corpus verdicts, and jsonio's own API.

The corpus in tests/vectors/json/ is read by every core's tests (web_demo/test/json_vectors,
android_demo JsonVectorsTest, ios_demo JSONVectorsTests); this file pins the Python verdicts and
that the committed corpus is what tests/vectors/make_json_vectors.py writes.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from deepproduct.sdk import jsonio
from deepproduct.sdk.jsonio import MAX_JSON_DEPTH, JsonError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CORPUS = VECTORS / "json"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED["cases"]))
def test_corpus_verdict(name: str) -> None:
    want = EXPECTED["cases"][name]["verdict"]
    data = (CORPUS / name).read_bytes()
    if want == "accept":
        jsonio.loads(data, source=name)
    else:
        with pytest.raises(JsonError) as info:
            jsonio.loads(data, source=name)
        message = str(info.value)
        assert message.startswith(f"{name}: ") and "\n" not in message


def test_corpus_is_complete_and_reproducible(tmp_path: Path) -> None:
    """Every file is listed, and a fresh run of the generator writes the committed bytes."""
    listed = set(EXPECTED["cases"])
    present = {p.name for p in CORPUS.iterdir()} - {"expected.json"}
    assert present == listed
    assert EXPECTED["grammar_version"] == jsonio.GRAMMAR_VERSION
    assert EXPECTED["max_depth"] == MAX_JSON_DEPTH
    spec = importlib.util.spec_from_file_location("make_json_vectors", VECTORS / "make_json_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path)
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (CORPUS / path.name).read_bytes(), path.name
    verdicts = [c["verdict"] for c in EXPECTED["cases"].values()]
    assert verdicts.count("accept") >= 20 and verdicts.count("refuse") >= 40


def test_values() -> None:
    """What accepted documents read as: underflow is 0, -0 stays a number, pairs join."""
    assert jsonio.loads("[1e-400]") == [0.0]
    assert jsonio.loads("-0") == 0
    assert math.copysign(1.0, jsonio.loads("-0.0")) == -1.0
    assert jsonio.loads('"\\ud83d\\ude00"') == "\U0001f600"
    assert jsonio.loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert jsonio.loads(" 18446744073709551616 ") == 2**64
    assert jsonio.loads('"\\ufeff"') == "\ufeff"  # a BOM inside a string is just a character


def test_refusals_are_json_errors_and_value_errors() -> None:
    for bad in ("1e400", "NaN", '{"a":1,"a":2}', "\ufeff{}", '"\\udc00"', "[" * 100_000, "01", "'a'"):
        with pytest.raises(JsonError):
            jsonio.loads(bad)
    assert issubclass(JsonError, ValueError)
    with pytest.raises(JsonError, match="lone surrogate"):
        jsonio.loads("[\"\ud800\"]")  # a raw lone surrogate in a str (never from UTF-8 bytes)
    with pytest.raises(JsonError, match="^m.json: not valid UTF-8"):
        jsonio.loads(b'"\xff"', source="m.json")
    with pytest.raises(TypeError):
        jsonio.loads(42)  # type: ignore[arg-type]


def test_depth_limit_is_exact() -> None:
    jsonio.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(JsonError, match="nested deeper than 64"):
        jsonio.loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(JsonError, match="nested deeper than 64"):
        jsonio.loads('{"a":' * 5000 + "1" + "}" * 5000)


def test_dumps_refuses_non_finite() -> None:
    assert jsonio.dumps({"a": [1, 2.5]}) == '{"a": [1, 2.5]}'
    assert jsonio.dumps({"a": 1}, separators=(",", ":")) == '{"a":1}'
    for bad in (float("nan"), float("inf"), [float("-inf")], {"x": {"y": float("nan")}}):
        with pytest.raises(JsonError, match="cannot write as JSON"):
            jsonio.dumps(bad)
    with pytest.raises(ValueError):
        jsonio.dumps(1, allow_nan=True)
    assert jsonio.loads(jsonio.dumps({"s": "\u00e9\U0001f600", "n": -0.0}, ensure_ascii=False)) == {
        "s": "\u00e9\U0001f600", "n": -0.0}


def test_index_format_reexports() -> None:
    """index_format kept its old names for callers that imported them from there."""
    from deepproduct.sdk import index_format

    assert index_format.MAX_JSON_DEPTH == MAX_JSON_DEPTH
    assert index_format.loads_strict_json("[1]") == [1]
    with pytest.raises(ValueError):
        index_format.loads_strict_json("1e400")
