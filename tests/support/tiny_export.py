"""A tiny export folder (tiny_cnn, 16-d) in dp-export's layout, for smoke tests and self-checks.

Why our own: the benchmark must be testable in seconds, without waiting for a full
EfficientNet export, and independently of the exporter's progress. It writes the minimal
schema-valid manifest (``deepproduct.export.manifest.minimal_manifest``): a checkpoint, ONNX fp32 (the legacy
exporter: 0.3 s instead of 5 s for dynamo on this graph), ONNX int8 (static QDQ on random
calibration: the weights are random anyway) and optionally TFLite fp32 (litert-torch, ~15 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepproduct.export.manifest import minimal_manifest, write_manifest

from .export import legacy_onnx_export


def write_tiny_export(out: str | Path, *, tflite: bool = False, embedding_dim: int = 16, seed: int = 0) -> Path:
    """Write ``out/manifest.json`` + artefacts + ``out/checkpoint.safetensors``; returns ``out``."""
    import torch

    from deepproduct.training.checkpoint import embedding_space_id, model_config_of, save_checkpoint
    from deepproduct.training.models import build_embedding_net

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_embedding_net("tiny_cnn", embedding_dim, pretrained=False).eval()
    size = model.input_size
    checkpoint = save_checkpoint(out / "checkpoint.safetensors", model, model_config=model_config_of(model))
    fp32 = legacy_onnx_export(model, out / "model_fp32.onnx", size)
    artefacts = [("onnx", "fp32", fp32)]
    int8 = out / "model_int8.onnx"
    _quantize_onnx(fp32, int8, size, seed)
    artefacts.append(("onnx", "int8", int8))
    if tflite:
        import litert_torch

        nhwc = litert_torch.to_channel_last_io(model, args=[0])
        path = out / "model_fp32.tflite"
        litert_torch.convert(nhwc, (torch.rand(1, size, size, 3),)).export(str(path))
        artefacts.append(("tflite", "fp32", path))

    mean, std = model.normalisation
    manifest = minimal_manifest([(p.name, f, prec) for f, prec, p in artefacts], name="tiny", backbone="tiny_cnn",
                                embedding_dim=embedding_dim, input_size=size,
                                embedding_space_id=embedding_space_id(model), mean=tuple(mean), std=tuple(std),
                                source_checkpoint=checkpoint)
    write_manifest(out, manifest)
    return out


def _quantize_onnx(src: Path, dst: Path, size: int, seed: int) -> None:
    """Static per-channel QDQ int8, the exporter's recipe (docs/export.md), on random calibration."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(seed)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": rng.random((1, 3, size, size), dtype=np.float32)} for _ in range(4)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
