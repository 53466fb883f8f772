"""A two-slot trial: each rank joins torch.distributed through det's
rendezvous (core.distributed.init_torch_distributed), all-reduces its
rank + 1, all-gathers the ranks, and the chief reports and checkpoints."""

import os

import torch
import torch.distributed as dist

import det

with det.core.init() as core:
    d = core.distributed
    d.init_torch_distributed("gloo")
    t = torch.tensor([float(d.rank + 1)])
    dist.all_reduce(t)
    ranks = d.allgather(d.rank)
    steps = 0
    for steps in range(1, 6):
        core.train.report_training_metrics(
            steps_completed=steps, metrics={"sum": t.item()})
        if core.preempt.should_preempt():  # the chief decides for all ranks
            break
    core.train.report_validation_metrics(
        steps_completed=steps,
        metrics={"validation_accuracy": t.item(), "size": d.size,
                 "gathered": sum(ranks), "world": dist.get_world_size()})
    if d.rank == 0:
        with core.checkpoint.store_path({"steps_completed": steps}) as (p, _):
            torch.save({"sum": t}, os.path.join(p, "t.pt"))
    print(f"rank {d.rank} of {d.size} done", flush=True)
