"""Helpers the tests share (not test modules: pytest never collects them).

``tests/conftest.py`` (on ``sys.path`` as pytest's rootdir of the tests) exposes the expensive ones
as fixtures; test modules import the small factories from here, never from each other.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT / "tests" / "vectors"  # the published test vectors the JVM, Swift and JS cores read too
