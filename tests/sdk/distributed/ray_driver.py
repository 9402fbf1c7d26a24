"""A Ray build driver for the kill tests: the engine's API with a slow ``shard_hook``.

Run as a script (``python ray_driver.py ARGS_JSON``) so that the hook is defined in ``__main__``
and cloudpickle ships it to the workers by value. The hook records which actor process takes
which shard (``STARTED/<shard>-<pid>``) and sleeps, so the test can kill a worker or this driver
half-way through, deterministically.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    args = json.loads(sys.argv[1])
    started = Path(args.pop("started"))
    delay = float(args.pop("delay"))

    def slow_shard(shard_id: int) -> None:
        (started / f"{shard_id:05d}-{os.getpid()}").touch()
        time.sleep(delay)

    from deepproduct.sdk.distributed.build import ray_build

    index, _, _ = ray_build(shard_hook=slow_shard, **{k: Path(v) if k in ("model", "images", "out", "workdir") else v
                                                      for k, v in args.items()})
    index.save(args["out"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
