"""Structural checks of a saved .mlpackage: everything that can be verified without macOS.

Core ML prediction needs macOS; up to that line we check the saved package itself, reloaded from
disk: ML Program type, spec version against the deployment target, the ``image`` input (RGB
image of the model's size -- the MIL evaluator cannot see a colour swap, so the layout is asserted
here), the float32 ``embedding`` output, the image scale/bias the program applies, metadata, no
unfused batch norm, and that the weights are stored in the precision the manifest claims.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model_info import INPUT_NAME, OUTPUT_NAME, ModelInfo

#: Core ML specification version of each minimum deployment target.
SPEC_VERSION_OF_TARGET = {"iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9}


def check_package(path: Path, info: ModelInfo, precision: str, target: str = "iOS16") -> dict:
    """Return a dict of facts; raise AssertionError listing every failed check."""
    import coremltools as ct

    from .mil_evaluator import MILProgram

    problems: list[str] = []
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    facts: dict = {"spec_version": spec.specificationVersion, "type": spec.WhichOneof("Type")}
    if facts["type"] != "mlProgram":
        problems.append(f"model type {facts['type']}, expected mlProgram")
    want_version = SPEC_VERSION_OF_TARGET[target]
    if spec.specificationVersion < want_version:
        problems.append(f"spec version {spec.specificationVersion} below {target}'s {want_version}")
    if spec.specificationVersion > want_version:
        problems.append(f"spec version {spec.specificationVersion} needs a newer OS than {target}")

    inputs, outputs = list(spec.description.input), list(spec.description.output)
    if [i.name for i in inputs] != [INPUT_NAME]:
        problems.append(f"inputs {[i.name for i in inputs]}, expected [{INPUT_NAME!r}]")
    else:
        image = inputs[0].type
        if image.WhichOneof("Type") != "imageType":
            problems.append("input is not an image")
        else:
            it = image.imageType
            colour = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(it.colorSpace)
            facts["input"] = {"width": it.width, "height": it.height, "colour_space": colour}
            if colour != "RGB":
                problems.append(f"input colour space {colour}, expected RGB")
            if (it.width, it.height) != (info.input_size, info.input_size):
                problems.append(f"input {it.width}x{it.height}, expected {info.input_size}x{info.input_size}")
    if [o.name for o in outputs] != [OUTPUT_NAME]:
        problems.append(f"outputs {[o.name for o in outputs]}, expected [{OUTPUT_NAME!r}]")
    else:
        arr = outputs[0].type.multiArrayType
        dtype = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(arr.dataType)
        facts["output"] = {"shape": list(arr.shape), "dtype": dtype}
        if dtype != "FLOAT32":
            problems.append(f"output dtype {dtype}, expected FLOAT32")
        if list(arr.shape) != [1, info.embedding_dim]:
            problems.append(f"output shape {list(arr.shape)}, expected [1, {info.embedding_dim}]")

    meta = spec.description.metadata
    for field, want in (("author", info.author), ("license", info.license), ("versionString", info.version)):
        if getattr(meta, field) != want:
            problems.append(f"metadata {field} {getattr(meta, field)!r}, expected {want!r}")
    for key, want in info.essentials().items():
        if meta.userDefined.get(key) != want:
            problems.append(f"user metadata {key} missing or different")

    program = MILProgram(path)
    ops = program.op_types
    facts["op_counts"] = {t: ops.count(t) for t in sorted(set(ops)) if t != "const"}
    if "batch_norm" in ops:
        problems.append(f"{ops.count('batch_norm')} unfused batch_norm op(s) left")
    scale, bias = _image_scale_bias(program)
    facts["image_scale"], facts["image_bias"] = scale, bias
    if scale is None or abs(scale - 1.0 / 255.0) > 1e-7:
        problems.append(f"image scale {scale}, expected 1/255")
    if bias is None or not np.allclose(bias, [-m for m in info.mean], atol=1e-6):
        problems.append(f"image bias {bias}, expected {[-m for m in info.mean]}")
    compressed = {"int8": "constexpr_affine_dequantize", "palette6": "constexpr_lut_to_dense"}
    if precision in compressed and compressed[precision] not in ops:
        problems.append(f"{precision} package has no {compressed[precision]} op (weights not compressed)")
    conv_dtypes = _conv_weight_dtypes(program)
    facts["conv_weight_dtypes"] = sorted(conv_dtypes)
    if precision == "fp16" and conv_dtypes != {"float16"}:
        problems.append(f"fp16 package has conv weights in {sorted(conv_dtypes)}")
    if precision == "fp32" and conv_dtypes != {"float32"}:
        problems.append(f"fp32 package has conv weights in {sorted(conv_dtypes)}")
    if problems:
        raise AssertionError(f"{path.name}: " + "; ".join(problems))
    return facts


def _image_scale_bias(program) -> tuple[float | None, list[float] | None]:
    """The ``mul`` / ``add`` ops coremltools inserts for ImageType scale and bias."""
    name = program.input_name
    scale = bias = None
    current = name
    for op in program.function.operations:
        if op.op_type not in ("mul", "add"):
            continue
        x, y = op.inputs.get("x"), op.inputs.get("y")
        if x is None or y is None or x.name != current or y.val is None:
            continue
        value = np.asarray(y.val, dtype=np.float64)
        if op.op_type == "mul" and scale is None:
            scale = float(value.reshape(-1)[0])
        elif op.op_type == "add" and bias is None:
            bias = value.reshape(-1).tolist()
        current = op.outputs[0].name
    return scale, bias


def _conv_weight_dtypes(program) -> set[str]:
    from .mil_evaluator import _out_dtype

    dtypes: set[str] = set()
    for op in program.function.operations:
        if op.op_type == "conv":
            weight = op.inputs["weight"]
            dtypes.add(str(_out_dtype(weight)))  # the stored (or decompressed) weight type
    return dtypes
