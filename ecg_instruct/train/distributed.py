"""Data parallelism through the launcher the user already has: ``torchrun`` or ``accelerate launch``.

Both start one process per device with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` in
the environment; this module reads them, joins the process group (NCCL on CUDA, gloo on CPU) and
wraps the model in ``DistributedDataParallel``. Without those variables it is a no-op, so the
same command and flags train on one device. Every rank computes the same global batch indices
and takes its own contiguous share, so with the same global batch and seed the loss curve does
not depend on the number of processes. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from ecg_instruct.train._torch import require_torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            require_torch().distributed.barrier()

    def share(self, rows):
        """This rank's contiguous slice of the global batch ``rows``."""
        per = len(rows) // self.world
        return rows[self.rank * per : (self.rank + 1) * per]

    def all_sum(self, value: float) -> float:
        if not self.active:
            return value
        torch = require_torch()
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t)


def init_from_env(device_name: str) -> Dist:
    """Join the process group a launcher set up (idempotent); ``Dist()`` when not launched."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    torch = require_torch()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name != "cpu" and torch.cuda.is_available()
    if not torch.distributed.is_initialized():
        if cuda:
            torch.cuda.set_device(local)
        torch.distributed.init_process_group(
            "nccl" if cuda else "gloo", timeout=timedelta(minutes=30)
        )
    return Dist(rank, world, local)


def device_for(dist: Dist, device):
    """One CUDA device per local rank; CPU stays CPU."""
    torch = require_torch()
    if dist.active and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def wrap(model, dist: Dist, device):
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
