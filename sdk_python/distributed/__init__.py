"""Catalogues beyond one machine: ``dp-search build --engine ray`` (docs/distributed.md).

Why a sub-package of its own: the SDK must import with numpy, Pillow and onnxruntime alone, and
Ray is an optional extra (``pip install 'deepproduct[distributed]'``). Only
:mod:`.ray_engine` imports Ray, and only inside its functions; :mod:`.plan` (shards, workdir
state, shard files) and :mod:`.merge` (shards -> one ``.dpindex`` through the existing writer)
are plain SDK code, so a workdir can be inspected and merged where Ray is not installed.

The modules:

* :mod:`.plan` -- the catalogue listed once and cut into fixed shards with stable ids; the
  workdir's identity (model, catalogue hash, shard size), the shard files and their done-markers;
* :mod:`.ray_engine` -- connecting to Ray and embedding the missing shards on a Ray Data actor pool;
* :mod:`.merge` -- the shards, in shard order, into the index that a one-process build writes;
* :mod:`.build` -- the ``build --engine ray`` command's orchestration, progress and summary.
"""

from __future__ import annotations

#: The optional extra that brings Ray (named in every "Ray is not installed" error).
EXTRA = "distributed"
#: The Ray release the engine is written and tested against (setup.cfg pins it exactly).
RAY_VERSION = "2.60.0"


class DistributedError(ValueError):
    """A Ray build that cannot go on: Ray missing, cluster unreachable, workdir mismatch, damaged shard.

    A ``ValueError`` so the CLI boundary prints it as one line with exit status 1.
    """


__all__ = ["EXTRA", "RAY_VERSION", "DistributedError"]
