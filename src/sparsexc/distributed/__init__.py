"""sparsexc.distributed: data-parallel training and label-sharded output layers on ``torch.distributed``.

See ``docs/distributed.md``. Nothing here is home-made transport: process groups come from
``torch.distributed`` (gloo on CPU, NCCL on CUDA), launches from ``torch.distributed.run`` (torchrun) or
``torch.multiprocessing``.
"""

from sparsexc.distributed.context import (
    all_gather_objects,
    all_reduce_sum,
    backend_for,
    is_distributed,
    is_main,
    process_group,
    rank,
    rank_device,
    shard_bounds,
    world_size,
)
from sparsexc.distributed.launch import free_port, relaunch_with_torchrun, spawn
from sparsexc.distributed.sharded import (
    ShardedOutputLayer,
    label_shard,
    sharded_logsumexp,
    sharded_softmax_loss,
    sharded_topk,
    sum_over_shards,
)

__all__ = [
    "ShardedOutputLayer",
    "all_gather_objects",
    "all_reduce_sum",
    "backend_for",
    "free_port",
    "is_distributed",
    "is_main",
    "label_shard",
    "process_group",
    "rank",
    "rank_device",
    "relaunch_with_torchrun",
    "shard_bounds",
    "sharded_logsumexp",
    "sharded_softmax_loss",
    "sharded_topk",
    "spawn",
    "sum_over_shards",
    "world_size",
]
