"""One torchrun process of the DDP check (tests/gpu/test_gpu_ddp.py): 2 steps of DistributedDataParallel.

Why apart from the trainer: the trainer joins a process group only when WORLD_SIZE > 1, and a
machine with one GPU can only run world size 1 (NCCL refuses two ranks on one device). This
worker always joins the group -- nccl on CUDA, gloo on CPU -- and wraps the trainer's own
``TrainForward`` in DDP, so gradient all-reduce over NCCL runs even on one GPU.

    python -m torch.distributed.run --standalone --nproc_per_node N tests/gpu/ddp_worker.py OUT_DIR DEVICE
Writes OUT_DIR/rank<r>.json: backend, world size, losses, a parameter checksum, an all-reduce sum.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn


def main(out_dir: str, device_name: str) -> None:
    from deepproduct.training.losses import create_loss
    from deepproduct.training.models import build_embedding_net
    from deepproduct.training.trainer import TrainForward

    backend = "nccl" if device_name == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = build_embedding_net("tiny_cnn", 16, pretrained=False).to(device)
    if model.classifier is not None:  # as the trainer does without a multitask branch: unused, frozen
        model.classifier.requires_grad_(False)
    ddp = nn.parallel.DistributedDataParallel(TrainForward(model),
                                              device_ids=[local] if device.type == "cuda" else None)
    loss_fn = create_loss("contrastive").to(device)
    optimiser = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batch, as with the sampler
    losses = []
    for _ in range(2):
        x = torch.rand(8, 3, 64, 64, generator=gen).to(device)
        labels = torch.arange(4).repeat_interleave(2).to(device)
        emb, _, _ = ddp(x)
        loss = loss_fn(emb.float(), labels, torch.zeros_like(labels))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # the all-reduce of the gradients happens here
        optimiser.step()
        losses.append(float(loss.detach()))
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    ones = torch.ones(1, device=device)
    dist.all_reduce(ones)
    record = {"rank": rank, "world_size": world, "backend": dist.get_backend(), "device": str(device),
              "losses": losses, "param_checksum": checksum, "all_reduce_sum": float(ones.item())}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
