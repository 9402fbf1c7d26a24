"""channels_last (what the trainer switches on for CUDA) gives the same embeddings as the default layout.

The model is the default recipe's backbone with its pretrained weights, in eval mode, converted
the way the trainer converts it (``model.to(memory_format=torch.channels_last)`` and the input
``contiguous(memory_format=torch.channels_last)``). TF32 is switched off for the comparison, so
both runs are fp32 and only the layout (and cuDNN's choice of kernels for it) differs: the unit
embeddings must agree to cosine >= 0.99999 each and 1e-4 per element.
"""

from __future__ import annotations

import copy

import pytest
import torch
from gpu_helpers import agreement, assert_close_to, deterministic_cublas, device_params

from deepproduct.training.models import build_embedding_net

deterministic_cublas()

MIN_COSINE = 0.99999
MAX_ABS = 1e-4


@pytest.fixture
def no_tf32():
    """Plain fp32 convolutions and matmuls for the duration of a test."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("device", device_params())
def test_channels_last_gives_the_same_embeddings(device, no_tf32):
    torch.manual_seed(0)
    size = 224 if device == "cuda" else 96
    model = build_embedding_net("efficientnet_lite0", 128, pretrained=True).eval().to(device)
    x = torch.rand(6, 3, size, size, device=device)
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x)
        got = last(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == ref.shape == (6, 128)
    for i in range(ref.shape[0]):
        assert_close_to(agreement(f"image {i}", ref[i], got[i]), min_cosine=MIN_COSINE, max_abs=MAX_ABS)
