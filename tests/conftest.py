"""Shared fixtures: a tiny embedded benchmark and a tiny exported model, each made once per session.

The code behind them lives in ``tests/support`` (plain helpers, not test modules).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """12 products of the procedural benchmark at a small image size (seconds to make)."""
    from deepproduct.training.data.synth import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("tinydata")
    return generate_synthetic_dataset(out, n_products=12, seed=0, n_distractors=2, image_size=96, workers=1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny random CNN exported to ``model.onnx`` + ``manifest.json`` (seed 0, 16-d; ~1 s of torch)."""
    from support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")
