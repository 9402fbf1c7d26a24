"""A checkpoint trained on the GPU exports through ``dp-export`` and passes the exporter's parity gate.

Why it can differ from a CPU-trained one: the weights were produced under AMP and channels_last on
CUDA, and the checkpoint must hold plain contiguous fp32 CPU tensors that the exporter and the
CPU runtimes read. Exported to ONNX fp32 only (the format every runtime here has; the converters
for the others are checked in tests/export), with the client checks off; parity is dp-export's
own gate (cosine to PyTorch and the Recall@1 rule, docs/export.md), read back from manifest.json.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gpu_helpers import deterministic_cublas, device_params
from support.training import tiny_overrides

from deepproduct.training.checkpoint import embedding_space_id, load_model
from deepproduct.training.config import load_config
from deepproduct.training.trainer import Trainer

deterministic_cublas()


@pytest.mark.parametrize("device", device_params(cpu_marks=(pytest.mark.slow,)))
def test_trained_checkpoint_exports_and_passes_parity(device, tiny_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_manifest, tmp_path, name="trained", device=device,
                                           **{"optim.epochs": 1}))
    trainer = Trainer(cfg, progress=False)
    assert trainer.device.type == device
    trainer.train()
    checkpoint = tmp_path / "trained" / "checkpoints" / "last.safetensors"
    out = tmp_path / "export"
    cmd = [sys.executable, "-m", "deepproduct.export.cli", str(checkpoint), "--out", str(out),
           "--formats", "onnx", "--quantize", "none", "--no-clients", "--calib", str(tiny_manifest),
           "--calib-count", "8", "--parity-images", "16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["passed"], manifest["parity"]
    onnx = [a for a in manifest["artefacts"] if a["format"] == "onnx"]
    assert onnx and all(p["passed"] for a in onnx for p in a["parity"])
    model, _ = load_model(checkpoint)
    assert manifest["embedding_space_id"] == embedding_space_id(model)
