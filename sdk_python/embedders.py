"""Image -> unit embedding, through an exported model and the manifest's input contract.

Runtimes behind one call (``embed``): ONNX Runtime (the default; what an app backend or a
catalogue job runs), the LiteRT interpreter for ``.tflite`` (what Android runs; optional,
imported lazily) and the ExecuTorch runtime for ``.pte`` (optional, lazily imported). All read preprocessing, layout, tensor names and the embedding dimension
from ``manifest.json`` instead of assuming them, and all return float32 unit vectors, so an
index built through one can be queried through the other when the embedding spaces agree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .model_manifest import (
    Artefact,
    ManifestError,
    ModelManifest,
    load_model_manifest,
    open_regular,
    sha256_file,
)
from .preprocessing import ImageDecodeError, ImageSource, PreprocessingSpec, preprocess_image


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class EmbedderError(ValueError):
    """A model that does not honour its manifest (wrong output size, unknown layout, ...)."""


@dataclass
class EmbeddingReport:
    """Embeddings of the images that decoded, and which ones did not (for ``--skip-bad``)."""

    embeddings: np.ndarray
    ok_indices: np.ndarray
    failures: list[tuple[str, str]] = field(default_factory=list)


def _unit(out: np.ndarray, dim: int, model: str) -> np.ndarray:
    out = np.asarray(out, dtype=np.float32)
    out = out.reshape(out.shape[0], -1)
    if out.shape[1] != dim:
        raise EmbedderError(f"{model}: the model outputs {out.shape[1]}-dimensional embeddings but its "
                            f"manifest says {dim}")
    if not np.all(np.isfinite(out)):
        raise EmbedderError(f"{model}: the model produced NaN or infinite embeddings")
    norms = np.sqrt(np.einsum("ij,ij->i", out.astype(np.float64), out.astype(np.float64)))
    if np.any(norms == 0):
        raise EmbedderError(f"{model}: the model produced an all-zero embedding")
    # The graph ends in L2 normalisation; this only removes int8/fp16 rounding of the norm.
    return (out / norms[:, None]).astype(np.float32)


class Embedder:
    """Shared batching, preprocessing and progress; subclasses only run a prepared batch."""

    layout = "NCHW"

    def __init__(self, model_path: Path, manifest: ModelManifest, artefact: Artefact):
        self.model_path = Path(model_path)
        self.manifest = manifest
        self.artefact = artefact
        self.spec: PreprocessingSpec = manifest.preprocessing
        self.dim = manifest.embedding_dim
        self.embedding_space_id = manifest.embedding_space_id

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.model_path)!r}, dim={self.dim}, "
                f"space={self.embedding_space_id!r})")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def preprocess(self, image: ImageSource) -> np.ndarray:
        return preprocess_image(image, self.spec, self.layout)

    def embed(self, images: Sequence[ImageSource] | np.ndarray) -> np.ndarray:
        """(N, D) float32 unit vectors for image sources, or for an already preprocessed batch."""
        if isinstance(images, np.ndarray):
            batch = self._check_batch(images)
            if not len(batch):
                return np.zeros((0, self.dim), np.float32)
        else:
            if not len(images):
                return np.zeros((0, self.dim), np.float32)
            batch = np.concatenate([self.preprocess(img) for img in images], axis=0)
        return _unit(self._run(batch), self.dim, str(self.model_path))

    def _check_batch(self, images: np.ndarray) -> np.ndarray:
        """A preprocessed batch as the model takes it, or an EmbedderError saying what is wrong with it
        (instead of a runtime's raw shape/type error, or NaN embeddings blamed on the model)."""
        size = self.spec.input_size
        want = (3, size, size) if self.layout == "NCHW" else (size, size, 3)
        if images.dtype.kind != "f":
            raise EmbedderError(f"{self.model_path}: embed() got a {images.dtype} array; a preprocessed batch is "
                                f"floating point (values in [0, 1], see preprocess())")
        batch = images[None] if images.ndim == 3 else images
        if batch.ndim != 4 or tuple(batch.shape[1:]) != want:
            raise EmbedderError(f"{self.model_path}: embed() got an array of shape {images.shape}; this model "
                                f"takes {self.layout} batches of shape (N, {', '.join(map(str, want))})")
        batch = batch.astype(np.float32, copy=False)
        if not np.all(np.isfinite(batch)):
            raise EmbedderError(f"{self.model_path}: embed() got an array with NaN or infinite values")
        return batch

    def embed_report(self, paths: Sequence[ImageSource], batch_size: int = 32, progress: bool = True,
                     desc: str = "embedding") -> EmbeddingReport:
        """Embed many images in batches; undecodable ones are recorded, not fatal."""
        from tqdm.auto import tqdm

        vectors: list[np.ndarray] = []
        ok: list[int] = []
        failures: list[tuple[str, str]] = []
        pending: list[np.ndarray] = []
        with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False) as bar:
            for i, source in enumerate(paths):
                try:
                    pending.append(self.preprocess(source))
                    ok.append(i)
                except ImageDecodeError as exc:
                    failures.append((str(source) if isinstance(source, (str, os.PathLike)) else f"#{i}",
                                     str(exc)))
                if len(pending) == batch_size or (i == len(paths) - 1 and pending):
                    vectors.append(self.embed(np.concatenate(pending, axis=0)))
                    pending = []
                bar.update(1)
        emb = np.concatenate(vectors, axis=0) if vectors else np.zeros((0, self.dim), np.float32)
        return EmbeddingReport(emb, np.asarray(ok, dtype=np.int64), failures)

    def embed_paths(self, paths: Sequence[ImageSource], batch_size: int = 32,
                    progress: bool = True) -> np.ndarray:
        """Embed many images with a progress bar; an undecodable image is an error naming them all."""
        report = self.embed_report(paths, batch_size, progress)
        if report.failures:
            listing = "\n".join(f"  {p}: {m}" for p, m in report.failures)
            raise ImageDecodeError(f"{len(report.failures)} image(s) could not be read:\n{listing}")
        return report.embeddings


class OnnxEmbedder(Embedder):
    """ONNX Runtime on CPU; ``threads`` sets intra-op threads (None: ONNX Runtime's default)."""

    def __init__(self, model_path: str | os.PathLike, manifest: ModelManifest, artefact: Artefact | None = None,
                 threads: int | None = None, providers: Sequence[str] | None = None):
        import onnxruntime as ort

        artefact = artefact or manifest.artefact_for_file(model_path)
        super().__init__(Path(model_path), manifest, artefact)
        if artefact.layout not in ("NCHW", "NHWC"):
            raise EmbedderError(f"{model_path}: unsupported input layout {artefact.layout!r} for ONNX")
        self.layout = artefact.layout
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        with open_regular(model_path) as f:
            model_bytes = f.read()
        if artefact.sha256 and hashlib.sha256(model_bytes).hexdigest() != artefact.sha256.lower():
            raise EmbedderError(f"{model_path}: SHA-256 differs from {manifest.path}; the model file was "
                                "changed after export")
        try:  # from the bytes just hashed: external data files (outside every hash) cannot be resolved
            self.session = ort.InferenceSession(model_bytes, sess_options=opts,
                                                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime raises its own exception types
            hint = (" -- it keeps weights in external data files, which are outside the manifest's hashes "
                    "and refused" if "external" in str(exc).lower() or "model_path" in str(exc) else "")
            raise EmbedderError(f"{model_path}: ONNX Runtime cannot load the model{hint} ({one_line(exc)})") from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if artefact.input_name not in inputs:
            raise EmbedderError(f"{model_path}: no input named {artefact.input_name!r} (has {list(inputs)})")
        if artefact.output_name not in outputs:
            raise EmbedderError(f"{model_path}: no output named {artefact.output_name!r} (has {outputs})")
        shape = inputs[artefact.input_name].shape
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        size = self.spec.input_size
        want = [3, size, size] if self.layout == "NCHW" else [size, size, 3]
        got = [d if isinstance(d, int) else None for d in shape[1:]]
        if len(got) != 3 or any(g is not None and g != w for g, w in zip(got, want, strict=True)):
            raise EmbedderError(f"{model_path}: input shape {shape} does not match the manifest's "
                                f"{self.layout} {want} (input_size {size})")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        feed_name, out_name = self.artefact.input_name, self.artefact.output_name
        if self._fixed_batch and batch.shape[0] != self._fixed_batch:
            parts = [self.session.run([out_name], {feed_name: batch[i:i + 1]})[0] for i in range(len(batch))]
            return np.concatenate(parts, axis=0)
        return self.session.run([out_name], {feed_name: np.ascontiguousarray(batch)})[0]


class LiteRTEmbedder(Embedder):
    """A ``.tflite`` model in the LiteRT interpreter (``ai-edge-litert``), NHWC, one image per call."""

    layout = "NHWC"

    def __init__(self, model_path: str | os.PathLike, manifest: ModelManifest, artefact: Artefact | None = None,
                 threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise EmbedderError("running .tflite models needs the optional package ai-edge-litert "
                                "(pip install 'deepproduct[litert]')") from exc
        artefact = artefact or manifest.artefact_for_file(model_path)
        super().__init__(Path(model_path), manifest, artefact)
        if artefact.layout != "NHWC":
            raise EmbedderError(f"{model_path}: LiteRT models take NHWC input, the manifest says {artefact.layout}")
        try:
            self.interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # the interpreter raises RuntimeError/ValueError variants
            raise EmbedderError(f"{model_path}: LiteRT cannot load the model ({exc})") from exc
        self._input = self.interpreter.get_input_details()[0]
        outs = self.interpreter.get_output_details()
        named = [o for o in outs if o["name"] == artefact.output_name]
        self._output = named[0] if named else outs[0]
        size = self.spec.input_size
        if list(self._input["shape"][1:]) != [size, size, 3]:
            raise EmbedderError(f"{model_path}: input shape {list(self._input['shape'])} does not match "
                                f"the manifest's NHWC [1, {size}, {size}, 3]")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        outs = []
        for i in range(batch.shape[0]):
            x = batch[i:i + 1]
            if dtype == np.uint8:  # image-typed input: the model scales by 1/255 itself
                x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
            self.interpreter.set_tensor(self._input["index"], x.astype(dtype, copy=False))
            self.interpreter.invoke()
            outs.append(np.array(self.interpreter.get_tensor(self._output["index"])))
        return np.concatenate(outs, axis=0)


class ExecuTorchEmbedder(Embedder):
    """A ``.pte`` (ExecuTorch, XNNPACK delegate) in the ExecuTorch runtime, NCHW, one image per call.

    Optional (``pip install 'deepproduct[executorch]'``) and imported only here: ExecuTorch's
    Python bindings take torch tensors, so this embedder brings torch with it, while
    ``deepproduct.sdk`` itself stays numpy + Pillow + onnxruntime. The bindings' thread pool is
    process-wide; :mod:`.executorch_runtime` reloads a program whose pool was resized under it.
    """

    def __init__(self, model_path: str | os.PathLike, manifest: ModelManifest, artefact: Artefact | None = None,
                 threads: int | None = None):
        try:
            from .executorch_runtime import PteMethod
        except ImportError as exc:  # pragma: no cover - the module itself is always there
            raise EmbedderError(str(exc)) from exc
        artefact = artefact or manifest.artefact_for_file(model_path)
        super().__init__(Path(model_path), manifest, artefact)
        if artefact.layout != "NCHW":
            raise EmbedderError(f"{model_path}: ExecuTorch models take NCHW input, the manifest says {artefact.layout}")
        try:
            self.method = PteMethod(model_path, threads)
        except ImportError as exc:
            raise EmbedderError("running .pte models needs the optional package executorch "
                                "(pip install 'deepproduct[executorch]')") from exc
        except Exception as exc:  # the bindings raise RuntimeError variants (e.g. a missing backend)
            raise EmbedderError(f"{model_path}: the ExecuTorch runtime cannot load 'forward' ({exc})") from exc
        size = self.spec.input_size
        if self.method.input_shape != [1, 3, size, size]:
            raise EmbedderError(f"{model_path}: input shape {self.method.input_shape} does not match the "
                                f"manifest's NCHW [1, 3, {size}, {size}]")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.concatenate([self.method(batch[i:i + 1]) for i in range(batch.shape[0])], axis=0)


def resolve_artefact(model: str | os.PathLike, format: str = "onnx", precision: str = "fp32"
                     ) -> tuple[ModelManifest, Artefact, Path]:
    """A model folder (manifest + artefacts) or one artefact file next to its manifest."""
    path = Path(model)
    if path.is_dir() or path.name == "manifest.json":
        manifest = load_model_manifest(path)
        artefact = manifest.artefact(format, precision)
    elif path.is_file():
        manifest = load_model_manifest(path.parent)
        artefact = manifest.artefact_for_file(path)
    else:
        raise ManifestError(f"{path}: no such model folder or file")
    file = manifest.artefact_path(artefact)
    if not file.is_file():
        raise ManifestError(f"{manifest.path}: lists {artefact.file}, which is missing")
    return manifest, artefact, file


def load_embedder(model: str | os.PathLike, format: str = "onnx", precision: str = "fp32",
                  threads: int | None = None, check_sha256: bool = True, **kwargs: Any) -> Embedder:
    """The embedder for ``format``/``precision`` from a model folder (or one artefact file).

    ``check_sha256`` compares the file with the manifest's hash, so a model replaced after
    export cannot silently produce vectors in another embedding space than the manifest says.
    """
    manifest, artefact, file = resolve_artefact(model, format, precision)
    if check_sha256 and artefact.sha256 and sha256_file(file) != artefact.sha256.lower():
        raise EmbedderError(f"{file}: SHA-256 differs from {manifest.path}; the model file was changed "
                            "after export")
    if artefact.format == "onnx":
        return OnnxEmbedder(file, manifest, artefact, threads=threads, **kwargs)
    if artefact.format == "tflite":
        return LiteRTEmbedder(file, manifest, artefact, threads=threads)
    if artefact.format == "executorch":
        return ExecuTorchEmbedder(file, manifest, artefact, threads=threads)
    raise EmbedderError(f"{file}: no Python runtime for format {artefact.format!r} "
                        "(onnx, tflite and executorch are supported)")
