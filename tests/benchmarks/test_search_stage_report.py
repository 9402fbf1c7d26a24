"""make demo's search-stage report: the real-image transfer table (hand-computed cells)."""

from __future__ import annotations

import math

from deepproduct.benchmarks.search_stage_report import _interval, search_section, transfer_section


def test_interval_is_the_unpaired_binomial_half_width() -> None:
    # 0.5 and 0.4 on 100 queries each: 1.96 * sqrt(0.25/100 + 0.24/100) = 0.1372 -> 13.72 points
    assert math.isclose(_interval(0.5, 100, 0.4, 100), 196 * math.sqrt(0.0049), rel_tol=1e-12)
    assert math.isclose(_interval(0.5, 100, 0.4, 100), 13.72, abs_tol=0.01)


def test_transfer_section_rows_and_gain() -> None:
    training = {"final": {"transfer/recall@1": 0.5, "transfer/recall@5": 0.75}}
    sdk = {"recall@1": 0.5, "recall@5": 0.8, "queries": 100, "gallery": 50}
    base = {"transfer/pooled/recall@1": 0.4, "transfer/pooled/recall@5": 0.6}
    text = transfer_section(training, sdk, base)
    assert "| off-the-shelf pooled backbone (PyTorch, no training) | 40.00 | 60.0 | reference |" in text
    assert "| shipped embedding, training-side evaluation | 50.00 | 75.0 | - |" in text
    assert "| shipped embedding, SDK: ONNX fp32 + float32 index | 50.00 | 80.0 | +10.0 ± 13.7 |" in text
    assert "100 phone-style queries against 50 shop images" in text


def test_transfer_section_without_reference() -> None:
    text = transfer_section({"final": {}}, {"recall@1": 0.25, "queries": 4, "gallery": 2}, {})
    assert "| shipped embedding, SDK: ONNX fp32 + float32 index | 25.00 | - | - |" in text
    assert "off-the-shelf pooled" not in text


def test_search_section_reports_int8_models_beside_fp32() -> None:
    training = {"final": {"recall@1": 0.875, "recall@5": 0.99}}
    f32, i8 = {"recall@1": 0.875, "recall@5": 0.99}, {"recall@1": 0.8777, "recall@5": 0.99}
    text, ok = search_section(training, f32, i8, None, {"TFLite": {"recall@1": 0.8832, "recall@5": 1.0}})
    assert ok
    assert "| SDK: TFLite int8 model (gallery and queries) + float32 index | 88.32 | 100.0 | +0.82 vs fp32 model |" in text
    _, ok = search_section(training, {"recall@1": 0.80}, i8, None)
    assert not ok  # the fp32 SDK path 7.5 points off the training-side figure fails the stage


def test_print_screen_section_reads_the_reference_from_its_own_eval() -> None:
    # The print-screen set's off-the-shelf run scores it as its data.manifest: plain recall@K keys.
    sdk = {"recall@1": 0.45, "recall@5": 0.7, "queries": 600, "gallery": 300}
    text = transfer_section({}, sdk, {"recall@1": 0.3, "recall@5": 0.5}, "print-screen", "")
    assert "## Real-image transfer through the SDK: print-screen style" in text
    assert "`dp-data transfer --style print-screen`" in text and "600 print-screen" in text
    assert "| off-the-shelf pooled backbone (PyTorch, no training) | 30.00 | 50.0 | reference |" in text
    assert "| shipped embedding, SDK: ONNX fp32 + float32 index | 45.00 | 70.0 | +15.0 ±" in text
    assert "training-side evaluation" not in text
