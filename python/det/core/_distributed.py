"""core.distributed: this process's place in a multi-slot trial.

The worker starts one process per slot with DET_RANK and DET_WORLD_SIZE,
and, for slots_per_trial > 1, DET_RENDEZVOUS: host:port where rank 0
serves a c10d TCP store (the one det-trial uses). init_torch_distributed()
joins torch.distributed through it. det runs every rank of a trial on one
worker, so local_rank == rank and cross_size == 1.
"""

import os


class DistributedContext:
    """Determined's core.DistributedContext: rank, size, local_rank,
    local_size, cross_rank, cross_size, and broadcast / allgather /
    gather over torch.distributed once it is initialised."""

    def __init__(self, rank=0, size=1, local_rank=None, local_size=None,
                 cross_rank=0, cross_size=1):
        self.rank = rank
        self.size = size
        self.local_rank = rank if local_rank is None else local_rank
        self.local_size = size if local_size is None else local_size
        self.cross_rank = cross_rank
        self.cross_size = cross_size

    @classmethod
    def from_environment(cls):
        rank = int(os.environ.get("DET_RANK", "0") or 0)
        size = max(1, int(os.environ.get("DET_WORLD_SIZE", "1") or 1))
        return cls(rank=rank, size=size)

    @classmethod
    def from_torch_distributed(cls):
        """As Determined's: from an initialised torch.distributed."""
        import torch.distributed as dist
        return cls(rank=dist.get_rank(), size=dist.get_world_size())

    def get_rank(self):
        return self.rank

    def get_size(self):
        return self.size

    def _torch_ready(self):
        if self.size == 1:
            return False
        import torch.distributed as dist
        if not dist.is_initialized():
            raise RuntimeError(
                "a collective of a multi-slot trial needs torch.distributed: "
                "call core.distributed.init_torch_distributed() first")
        return True

    def broadcast(self, obj):
        if not self._torch_ready():
            return obj
        import torch.distributed as dist
        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def allgather(self, obj):
        if not self._torch_ready():
            return [obj]
        import torch.distributed as dist
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def gather(self, obj):
        if not self._torch_ready():
            return [obj]
        out = self.allgather(obj)
        return out if self.rank == 0 else None

    def init_torch_distributed(self, backend=None, timeout_s=300):
        """Initialises torch.distributed's default process group for this
        trial from det's rendezvous (rank 0's c10d store); a no-op when
        it is already initialised. backend: "gloo" (default) or "nccl".
        Single-slot trials get a group of one on a private store, so the
        same script runs with any slots_per_trial."""
        import datetime
        import torch.distributed as dist
        if dist.is_initialized():
            return
        backend = backend or "gloo"
        timeout = datetime.timedelta(seconds=timeout_s)
        rendezvous = os.environ.get("DET_RENDEZVOUS", "")
        if self.size > 1:
            if not rendezvous:
                raise RuntimeError(
                    f"DET_WORLD_SIZE is {self.size} but DET_RENDEZVOUS is "
                    f"unset: this process was not started by a det worker")
            dist.init_process_group(backend, init_method=f"tcp://{rendezvous}",
                                    rank=self.rank, world_size=self.size,
                                    timeout=timeout)
        else:
            store = dist.HashStore()
            dist.init_process_group(backend, store=store, rank=0,
                                    world_size=1, timeout=timeout)
