"""PyTorch -> Core ML ML Program (.mlpackage) with an image input Vision can feed.

Contract: input ``image`` is a ``ct.ImageType`` (RGB, 8-bit pixels), output ``embedding`` is a
float32 multi-array even when the program computes in fp16. ImageType applies one scale to all
channels (``scale * pixel + bias[c]``), so the backbone's normalisation is split:
scale = 1/255 and bias = -mean[c] give ``x01 - mean``, and 1/std[c] is folded into the first
convolution's weights. That is exact: the convolution is linear in its input, and its zero
padding is zero in the mean-subtracted space exactly as in the normalised space.

coremltools 9 converts torch 2.14 through ``torch.export(...).run_decompositions({})``; it logs
that the torch version is newer than tested, which is recorded in the manifest. Batch norms are
fused into the convolutions by the converter's passes (checked: no ``batch_norm`` op may remain
before compression). Compression uses ``coremltools.optimize.coreml`` on the converted fp16
program: int8 linear (symmetric, per-channel) weights, and 6-bit k-means palettes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..converter_errors import translate
from ..errors import ExportError
from ..model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo

MINIMUM_TARGET = "iOS16"
PALETTE_BITS = 6


def coremltools_warnings() -> list[str]:
    """coremltools' version warnings (logged once at import, so recomputed here)."""
    import coremltools as ct

    notes: list[str] = []
    try:
        from coremltools import _deps
        from packaging.version import Version

        tested = getattr(_deps, "_TORCH_MAX_VERSION", None)
        current = torch.__version__.split("+")[0]
        if tested and Version(current) > Version(tested):
            notes.append(f"coremltools {ct.__version__}: torch {torch.__version__} has not been tested "
                         f"with coremltools (most recent tested: {tested})")
    except Exception:  # noqa: BLE001 - a private module; the note is informative only
        pass
    return notes


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3:
            return module
    raise ExportError("Core ML export: no 3-channel Conv2d found to fold 1/std into")


def fold_normalisation(model: torch.nn.Module, input_size: int) -> torch.nn.Module:
    """A copy of ``model`` taking ``x01 - mean`` (1/std folded into the first conv).

    Checked numerically against the original: a model whose first op on the image is not that
    convolution (so folding would be wrong) fails here instead of shipping a wrong model.
    """
    folded = copy.deepcopy(model).eval()
    std = folded.std.detach().clone().view(1, 3, 1, 1)
    mean = folded.mean.detach().clone().view(1, 3, 1, 1)
    conv = first_conv(folded)
    with torch.no_grad():
        conv.weight.div_(std.view(1, 3, 1, 1) if conv.groups == 1 else std.view(3, 1, 1, 1))
        folded.mean.zero_()
        folded.std.fill_(1.0)
    x = torch.rand(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(x)
        got = folded(x - mean)
    err = float((want - got).abs().max())
    if err > 1e-4:
        raise ExportError(f"Core ML export: folding 1/std into {type(conv).__name__} changed the output "
                          f"(max |diff| {err:.2e}); the model's first operation on the image is not that conv")
    return folded


def convert(model: torch.nn.Module, info: ModelInfo, precision: str) -> Any:
    """Convert to an ML Program computing in ``precision`` ('fp32' or 'fp16')."""
    import coremltools as ct

    folded = fold_normalisation(model, info.input_size)
    example = torch.rand(1, 3, info.input_size, info.input_size)
    try:
        program = torch.export.export(folded, (example,)).run_decompositions({})
        mlmodel = ct.convert(
            program,
            inputs=[ct.ImageType(name=INPUT_NAME, shape=(1, 3, info.input_size, info.input_size),
                                 scale=1.0 / 255.0, bias=[-float(m) for m in info.mean],
                                 color_layout=ct.colorlayout.RGB)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            minimum_deployment_target=getattr(ct.target, MINIMUM_TARGET),
        )
    except Exception as exc:
        raise translate(exc, "coreml", "conversion") from exc
    return mlmodel


def compress(mlmodel: Any, precision: str, keep_fp16: list[str] | None = None) -> Any:
    """int8 linear weights or 6-bit palettes on an already converted (fp16) program.

    ``keep_fp16`` names weight constants left uncompressed (coreml/sensitivity.py).
    """
    import coremltools.optimize.coreml as cto

    skip = {name: None for name in keep_fp16 or []}
    if precision == "int8":
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=512),
            op_name_configs=skip)
        return cto.linear_quantize_weights(mlmodel, config=config)
    if precision == f"palette{PALETTE_BITS}":
        config = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
            mode="kmeans", nbits=PALETTE_BITS, granularity="per_tensor", weight_threshold=512),
            op_name_configs=skip)
        return cto.palettize_weights(mlmodel, config=config)
    raise ExportError(f"unknown Core ML compression {precision!r}")


def set_metadata(mlmodel: Any, info: ModelInfo, precision: str) -> None:
    mlmodel.author = info.author
    mlmodel.license = info.license
    mlmodel.short_description = info.description
    mlmodel.version = info.version
    mlmodel.input_description[INPUT_NAME] = (
        f"RGB image {info.input_size}x{info.input_size}; the model applies x/255 - mean and 1/std itself")
    mlmodel.output_description[OUTPUT_NAME] = f"L2-normalised {info.embedding_dim}-d embedding (float32)"
    meta = mlmodel.user_defined_metadata
    for key, value in info.essentials().items():
        meta[key] = value
    meta["deepproduct.precision"] = precision
    meta["deepproduct.minimum_deployment_target"] = MINIMUM_TARGET


def export_coreml(model: torch.nn.Module, info: ModelInfo, precisions: list[str], out_dir: Path,
                  filenames: dict[str, str], calibration: np.ndarray | None = None
                  ) -> tuple[dict[str, Path], dict[str, dict]]:
    """Write every requested Core ML variant; compressed ones start from the fp16 program.

    With ``calibration`` images (NCHW [0, 1]) the compressed variants keep their most sensitive
    weights in fp16 (coreml/sensitivity.py); returns the paths and, per compressed variant, the
    sensitivity summary.
    """
    from ..thresholds import COSINE_THRESHOLDS
    from . import sensitivity as coreml_sensitivity

    written: dict[str, Path] = {}
    selection: dict[str, dict] = {}
    fp16 = None
    for precision in precisions:
        if precision == "fp32":
            mlmodel = convert(model, info, "fp32")
        else:
            if fp16 is None:
                fp16 = convert(model, info, "fp16")
            if precision == "fp16":
                mlmodel = fp16
            else:
                keep: list[str] = []
                if calibration is not None:
                    bits = 8 if precision == "int8" else PALETTE_BITS
                    keep, selection[precision] = coreml_sensitivity.protected_const_names(
                        model, fp16, calibration, bits, COSINE_THRESHOLDS[("coreml", precision)])
                mlmodel = compress(fp16, precision, keep)
        set_metadata(mlmodel, info, precision)
        path = out_dir / filenames[precision]
        mlmodel.save(str(path))
        written[precision] = path
    return written, selection
