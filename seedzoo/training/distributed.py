"""Process-group set-up and the few collectives the trainer needs; every function works on one process.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them the run is a
single process and the collectives are identities.

The same variables left in a shell by an earlier torchrun would make a plain `seedzoo train` wait for
processes that never come (torch waits 30 minutes, silently). Outside torchrun (no TORCHELASTIC_RUN_ID:
`mp.spawn`, a launcher of one's own, or stale variables) the processes therefore meet through a store
that waits at most SEEDZOO_RENDEZVOUS_TIMEOUT seconds (default 120), and the wait is announced; variables
that contradict each other are refused before any wait.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from ..errors import SeedzooError

DIST_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_RENDEZVOUS_TIMEOUT = 120.0  # seconds, SEEDZOO_RENDEZVOUS_TIMEOUT


class DistributedSetupError(SeedzooError, RuntimeError):
    """The distributed variables describe a group this process cannot join."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda was asked for but no CUDA device is available; use device=cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(device)


def _shown() -> str:
    return " ".join(f"{v}={os.environ[v]}" for v in DIST_VARIABLES if v in os.environ)


def _unset_hint() -> str:
    return (f"if they are left from an earlier torchrun, `unset {' '.join(DIST_VARIABLES)}`; to train on "
            "several processes, start them with torchrun")


def _int_variable(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise DistributedSetupError(f"{name}={raw!r} is not a whole number ({_shown()}); {_unset_hint()}")
    return int(raw)


def _rendezvous_timeout() -> float:
    raw = os.environ.get("SEEDZOO_RENDEZVOUS_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else _RENDEZVOUS_TIMEOUT
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise DistributedSetupError(f"SEEDZOO_RENDEZVOUS_TIMEOUT={raw!r} is not a positive number of seconds")
    return value


def _group_problems(rank: int, world: int) -> str | None:
    """What makes the variables contradict themselves, before anything waits on them."""
    if rank >= world:
        return f"RANK {rank} is not below WORLD_SIZE {world}"
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v, "").strip()]
    if missing:
        return f"WORLD_SIZE is {world} but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
    return None


def _rendezvous_store(rank: int, world: int) -> dist.Store:
    """Meet the other processes outside torchrun, waiting at most SEEDZOO_RENDEZVOUS_TIMEOUT seconds."""
    timeout = _rendezvous_timeout()
    host, port = os.environ["MASTER_ADDR"], _int_variable("MASTER_PORT", 0)
    print(f"waiting up to {timeout:g} s for the {world} processes of {_shown()} (not under torchrun; "
          "SEEDZOO_RENDEZVOUS_TIMEOUT)", file=sys.stderr)
    try:
        store = dist.TCPStore(host, port, world, is_master=rank == 0, timeout=timedelta(seconds=timeout),
                              wait_for_workers=True)
    except (RuntimeError, OSError) as err:  # DistStoreError / DistNetworkError: timed out, refused, address in use
        reason = " ".join(str(err).split())[:200]
        raise DistributedSetupError(f"the other processes of {_shown()} did not meet this one within {timeout:g} s "
                                    f"({reason}); {_unset_hint()}") from None
    store.set_timeout(timedelta(minutes=30))  # torch's own default, for what the group does with it later
    return store


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU), or stay single-process."""
    world = _int_variable("WORLD_SIZE", 1)
    rank = _int_variable("RANK", 0)
    local_rank = _int_variable("LOCAL_RANK", 0)
    if world > 1 and not dist.is_initialized() and (problem := _group_problems(rank, world)):
        raise DistributedSetupError(f"{problem} ({_shown()}); {_unset_hint()}")
    dev = _pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if os.environ.get("TORCHELASTIC_RUN_ID"):  # torchrun's own rendezvous: it bounds the wait itself
            dist.init_process_group(backend=backend, rank=rank, world_size=world)
        else:
            dist.init_process_group(backend=backend, store=_rendezvous_store(rank, world), rank=rank,
                                    world_size=world)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world, local_rank, dev)


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def all_gather_cat(x: Tensor) -> Tensor:
    """Concatenate `x` from every rank along dim 0, in rank order (no gradient)."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_reduce_mean(x: Tensor) -> Tensor:
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x / world_size()


def all_reduce_sum(x: Tensor) -> Tensor:
    if world_size() == 1:
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
