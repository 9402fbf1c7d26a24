"""The two side virtualenvs and how to run a client script inside one.

tflite-support 0.4.4 pins protobuf<4, which breaks ai-edge-litert's and onnx's protobuf modules
in the same environment, and MediaPipe brings its own OpenCV and protobuf: each lives in its own
virtualenv (created by ``export/tflite/setup_client_envs.sh``) and is driven through a subprocess that
exchanges only files (a JSON request in, an .npz or a .tflite out).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClientEnvError

REPO_ROOT = Path(__file__).resolve().parents[2]  # export/tflite/side_envs.py -> the checkout
CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
SETUP_COMMAND = "bash export/tflite/setup_client_envs.sh"


@dataclass(frozen=True)
class SideEnv:
    name: str  # human name
    env_var: str
    default_dir: str

    @property
    def python(self) -> Path:
        override = os.environ.get(self.env_var)
        return Path(override) if override else REPO_ROOT / self.default_dir / "bin" / "python"

    def available(self) -> bool:
        return self.python.is_file() and os.access(self.python, os.X_OK)

    def require(self) -> Path:
        if not self.available():
            raise ClientEnvError(
                f"the {self.name} virtualenv is missing ({self.python}); create it with "
                f"`{SETUP_COMMAND}` from the repository root (or point {self.env_var} at its python)")
        return self.python

    def version(self, package: str) -> str | None:
        if not self.available():
            return None
        proc = subprocess.run([str(self.python), "-c",
                               f"import importlib.metadata as m; print(m.version({package!r}))"],
                              capture_output=True, text=True, timeout=120)
        return proc.stdout.strip() or None if proc.returncode == 0 else None


TFLITE_SUPPORT = SideEnv("tflite-support (Task Library + metadata writer)", "DP_TFLITE_SUPPORT_PYTHON",
                         ".venv-tflite-support")
MEDIAPIPE = SideEnv("MediaPipe", "DP_MEDIAPIPE_PYTHON", ".venv-mediapipe")


def run_client(env: SideEnv, script: str, request: dict, workdir: Path, timeout: int = 900) -> dict:
    """Run ``export/tflite/clients/<script>`` in ``env`` with a JSON request file; returns its JSON reply."""
    python = env.require()
    workdir.mkdir(parents=True, exist_ok=True)
    req_path = workdir / f"{Path(script).stem}.request.json"
    reply_path = workdir / f"{Path(script).stem}.reply.json"
    req_path.write_text(json.dumps(request), encoding="utf-8")
    reply_path.unlink(missing_ok=True)
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([str(python), str(CLIENTS_DIR / script), str(req_path), str(reply_path)],
                          capture_output=True, text=True, timeout=timeout, env=clean_env)
    if proc.returncode != 0 or not reply_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise ClientEnvError(f"{script} in the {env.name} virtualenv failed (exit {proc.returncode}): "
                             + " | ".join(tail))
    return json.loads(reply_path.read_text(encoding="utf-8"))
