"""Multi-process training with torch.distributed (torchrun): gloo on CPU, NCCL on CUDA.

A process is part of a distributed run when torchrun set WORLD_SIZE > 1 (and RANK, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). `deeproot train --nproc N` starts N such processes on this machine
through `torch.distributed.run`; `torchrun --nnodes ... -m deeproot.training ...` runs across
machines. Only rank 0 writes files; every rank computes the same metrics from gathered outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from deeproot.errors import DeeprootError, InputError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def env() -> DistEnv:
    """This process's place, from torchrun's environment variables."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise InputError(f"bad torchrun environment ({exc})") from exc
    return DistEnv(rank, world, local)


def init(torch: Any, de: DistEnv, cuda: bool) -> None:
    """Join the process group (NCCL with CUDA, else gloo) once."""
    dist = torch.distributed
    if de.active and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(de.local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")


def shutdown(torch: Any) -> None:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather(torch: Any, de: DistEnv, obj: Any) -> list[Any]:
    """Every rank's object, in rank order (a one-element list when not distributed)."""
    if not de.active:
        return [obj]
    out: list[Any] = [None] * de.world
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast_buffers(torch: Any, de: DistEnv, module: Any) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so evaluation on
    any rank uses exactly the model rank 0 saves."""
    if de.active:
        for b in module.buffers():
            torch.distributed.broadcast(b.data, src=0)


def launch(nproc: int, argv: list[str]) -> int:
    """Run `python -m deeproot.training ARGV` in `nproc` processes on this machine via
    `torch.distributed.run` (torchrun); returns its exit status."""
    if nproc < 2:
        raise InputError(f"--nproc must be >= 2 to launch processes, got {nproc}")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "deeproot.training",
        *argv,
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        return subprocess.run(cmd, env=env, check=False).returncode
    except KeyboardInterrupt:
        raise
    except OSError as exc:
        raise DeeprootError(f"cannot start torchrun ({exc})") from exc
