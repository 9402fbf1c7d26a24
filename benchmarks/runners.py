"""One small runner per runtime, all behind the same two calls, so every artefact is timed alike.

``prepare`` turns an NCHW float32 [0, 1] batch into the runtime's own input (layout, batch
resize) outside the timed region; ``infer`` is only the runtime's inference call. Why not the
SDK's embedders: those add preprocessing and output checks around the call, run LiteRT one
image per call and cannot switch on ONNX Runtime profiling; a benchmark needs the bare call
at a chosen thread count and batch. Runtimes are imported lazily: a host without LiteRT or
torch still benchmarks what it has.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepproduct.sdk.embedders import one_line
from deepproduct.sdk.model_manifest import ModelManifest, load_model_manifest


class NotRunnableHere(RuntimeError):
    """The artefact's runtime does not exist on this machine (Core ML on Linux, a missing package)."""


@dataclass(frozen=True)
class ArtefactRef:
    """What to run: an exported file (or the PyTorch checkpoint that is the reference)."""

    key: str  # "onnx/int8", "tflite/fp32", "pytorch/fp32"
    format: str
    precision: str
    path: Path
    layout: str = "NCHW"
    input_name: str = "image"
    output_name: str = "embedding"
    raw: dict | None = None

    @property
    def runtime(self) -> str:
        return RUNTIMES.get(self.format, self.format)


RUNTIMES = {"onnx": "onnxruntime", "tflite": "litert-xnnpack", "pytorch": "pytorch-eager", "coreml": "coreml",
            "executorch": "executorch-xnnpack", "executorch-coreml": "executorch-coreml"}


def discover_artefacts(export_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None
                       ) -> tuple[ModelManifest, list[ArtefactRef]]:
    """The manifest's artefacts in its order, then PyTorch eager when a checkpoint is known."""
    manifest = load_model_manifest(export_dir)
    refs = [ArtefactRef(key=f"{a.format}/{a.precision}", format=a.format, precision=a.precision,
                        path=manifest.artefact_path(a), layout=a.layout, input_name=a.input_name,
                        output_name=a.output_name, raw=a.raw)
            for a in manifest.artefacts]
    ck = checkpoint or _checkpoint_from_manifest(manifest)
    if ck is not None and checkpoint_matches(manifest, ck) is False:
        warnings.warn(f"{ck} is not the checkpoint {manifest.path} was exported from (sha256 differs): "
                      "cosines to PyTorch will compare different weights", stacklevel=2)
    if ck is not None:
        refs.append(ArtefactRef(key="pytorch/fp32", format="pytorch", precision="fp32", path=Path(ck)))
    return manifest, refs


def _checkpoint_from_manifest(manifest: ModelManifest) -> Path | None:
    """The source checkpoint (``model.source_checkpoint.file``) when it sits in the export folder.

    dp-export records only the file name and its sha256, so a checkpoint elsewhere must be
    passed with ``--checkpoint``; without one there is no PyTorch reference in the run.
    """
    source = (manifest.raw.get("model") or {}).get("source_checkpoint") or {}
    name = source.get("file") if isinstance(source, dict) else None
    if isinstance(name, str) and (manifest.directory / name).is_file():
        return manifest.directory / name
    return None


def checkpoint_matches(manifest: ModelManifest, checkpoint: str | os.PathLike) -> bool | None:
    """Whether ``checkpoint`` is the one the export was made from (None: the manifest does not say)."""
    from deepproduct.export.manifest import sha256_file

    source = (manifest.raw.get("model") or {}).get("source_checkpoint") or {}
    expected = source.get("sha256") if isinstance(source, dict) else None
    path = Path(checkpoint)
    if not expected or not path.is_file():
        return None
    return sha256_file(path) == expected


class OnnxRunner:
    """ONNX Runtime on the CPU, ``threads`` intra-op threads, sequential execution."""

    def __init__(self, ref: ArtefactRef, threads: int, profile_prefix: str | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(ref.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, ...): bad input, not a bug
            raise ValueError(f"{ref.path}: ONNX Runtime cannot load it as a model ({one_line(exc)})") from None
        if profile_prefix:  # only once it loads: a profiling session that fails to load logs a second stderr line
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
            self.session = ort.InferenceSession(str(ref.path), opts, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        self.input_name = ref.input_name if ref.input_name in names else names[0]
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = ref.output_name if ref.output_name in outputs else outputs[0]
        self.layout = ref.layout if ref.layout in ("NCHW", "NHWC") else "NCHW"

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        return to_layout(x_nchw, self.layout)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def end_profiling(self) -> str:
        return self.session.end_profiling()


class TFLiteRunner:
    """The LiteRT interpreter with its default XNNPACK delegate and ``threads`` threads."""

    def __init__(self, ref: ArtefactRef, threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise NotRunnableHere("ai-edge-litert is not installed (pip install 'deepproduct[litert]')") from exc
        self.interpreter = Interpreter(model_path=str(ref.path), num_threads=int(threads))
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]
        outs = self.interpreter.get_output_details()
        self._out = next((o for o in outs if ref.output_name and ref.output_name in o["name"]), outs[0])
        self.layout = "NHWC" if ref.layout != "NCHW" else "NCHW"
        self._shape = tuple(self._in["shape"])

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        x = to_layout(x_nchw, self.layout)
        if tuple(x.shape) != self._shape:
            self.interpreter.resize_tensor_input(self._in["index"], list(x.shape), strict=False)
            self.interpreter.allocate_tensors()
            self._in = self.interpreter.get_input_details()[0]
            self._out = next(o for o in self.interpreter.get_output_details() if o["index"] == self._out["index"])
            self._shape = tuple(x.shape)
        dtype = self._in["dtype"]
        if dtype != np.float32:  # an integer input: quantise with the tensor's own parameters
            scale, zero = self._in["quantization"]
            if not scale:  # image-typed uint8 input that scales by 1/255 itself (as the SDK feeds it)
                scale, zero = 1 / 255, 0
            info = np.iinfo(dtype)
            x = np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)
        return np.ascontiguousarray(x)

    def infer(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out["index"])
        if y.dtype != np.float32:
            scale, zero = self._out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y


class ExecuTorchRunner:
    """The ExecuTorch runtime (Python bindings), ``forward`` of a ``.pte`` with its delegate.

    The programs are exported with a fixed batch of 1 (as a phone runs them), so a larger batch
    is refused in ``prepare`` and recorded as skipped. The bindings' thread pool is process-wide:
    ``prepare`` sizes it for this runner and reloads the program if another runner resized it
    (``deepproduct.sdk.executorch_runtime``), outside the timed region.
    """

    def __init__(self, ref: ArtefactRef, threads: int) -> None:
        try:
            from executorch.runtime import Runtime

            from deepproduct.sdk.executorch_runtime import PteMethod
        except ImportError as exc:
            raise NotRunnableHere("executorch is not installed (pip install 'deepproduct[executorch]')") from exc
        if ref.format == "executorch-coreml" and not Runtime.get().backend_registry.is_available("CoreMLBackend"):
            raise NotRunnableHere(f"{ref.key}: this ExecuTorch runtime has no CoreMLBackend (Apple platforms only)")
        self.pte = PteMethod(ref.path, int(threads))
        self.layout = "NCHW"

    def prepare(self, x_nchw: np.ndarray) -> Any:
        if x_nchw.shape[0] != 1:
            raise ValueError(f"the .pte takes batch 1, not {x_nchw.shape[0]}")
        self.pte.ready()
        return self.pte.tensor(x_nchw)

    def infer(self, x: Any) -> np.ndarray:
        return self.pte.execute_tensor(x)


class TorchRunner:
    """The checkpoint in PyTorch eager mode (the reference every artefact is compared with)."""

    def __init__(self, ref: ArtefactRef, threads: int) -> None:
        import torch

        from deepproduct.training.checkpoint import load_model

        self.torch = torch
        self.threads = int(threads)
        torch.set_num_threads(self.threads)
        self.model, self.config = load_model(ref.path)
        self.layout = "NCHW"

    def prepare(self, x_nchw: np.ndarray) -> Any:
        self.torch.set_num_threads(self.threads)  # global state: the last runner built may differ
        return self.torch.from_numpy(np.ascontiguousarray(x_nchw))

    def infer(self, x: Any) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(x).numpy()


def make_runner(ref: ArtefactRef, threads: int) -> OnnxRunner | TFLiteRunner | TorchRunner | ExecuTorchRunner:
    """The runner for ``ref``; raises :class:`NotRunnableHere` for formats this host cannot run."""
    if ref.format == "onnx":
        return OnnxRunner(ref, threads)
    if ref.format == "tflite":
        return TFLiteRunner(ref, threads)
    if ref.format == "pytorch":
        return TorchRunner(ref, threads)
    if ref.format.startswith("executorch"):
        return ExecuTorchRunner(ref, threads)
    raise NotRunnableHere(f"{ref.key}: {ref.format} artefacts cannot run on this host "
                          "(see benchmarks/ios/README.md for Core ML on a Mac or iPhone)")


def to_layout(x_nchw: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHWC":
        return np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(x_nchw, dtype=np.float32)


def embed(runner: OnnxRunner | TFLiteRunner | TorchRunner, x_nchw: np.ndarray, batch: int = 32) -> np.ndarray:
    """Embeddings of a whole NCHW array, ``batch`` images per call (batch 1 where a model is fixed)."""
    out = []
    for start in range(0, len(x_nchw), batch):
        chunk = x_nchw[start:start + batch]
        try:
            out.append(runner.infer(runner.prepare(chunk)))
        except Exception:  # a fixed-batch model: fall back to one image per call
            if len(chunk) == 1:
                raise
            out.extend(runner.infer(runner.prepare(chunk[i:i + 1])) for i in range(len(chunk)))
    return np.concatenate(out, axis=0).astype(np.float32).reshape(len(x_nchw), -1)
