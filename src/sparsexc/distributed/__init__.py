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
    full_state_dict,
    gather_column_sets,
    gather_columns,
    label_shard,
    label_sharded,
    sharded_layers,
    sharded_logsumexp,
    sharded_pair_logits,
    sharded_softmax,
    sharded_topk,
    sum_over_shards,
)

__all__ = [
    "ShardedOutputLayer",
    "all_gather_objects",
    "all_reduce_sum",
    "backend_for",
    "free_port",
    "full_state_dict",
    "gather_column_sets",
    "gather_columns",
    "is_distributed",
    "is_main",
    "label_shard",
    "label_sharded",
    "process_group",
    "rank",
    "rank_device",
    "relaunch_with_torchrun",
    "shard_bounds",
    "sharded_layers",
    "sharded_logsumexp",
    "sharded_pair_logits",
    "sharded_softmax",
    "sharded_topk",
    "spawn",
    "sum_over_shards",
    "world_size",
]
