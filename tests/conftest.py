"""Shared fixtures: a tiny embedded benchmark generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """12 products of the procedural benchmark at a small image size (seconds to make)."""
    from deepproduct.training.data.synth import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("tinydata")
    return generate_synthetic_dataset(out, n_products=12, seed=0, n_distractors=2, image_size=96, workers=1)
