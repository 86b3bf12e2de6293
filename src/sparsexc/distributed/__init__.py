"""sparsexc.distributed: data-parallel training and label-sharded output layers on ``torch.distributed``.

See ``docs/distributed.md``. Nothing here is home-made transport: process groups come from
``torch.distributed`` (gloo on CPU, NCCL on CUDA), launches from ``torch.distributed.run`` (torchrun) or
``torch.multiprocessing``.
"""

from typing import TYPE_CHECKING

from sparsexc._lazy import lazy_exports

if TYPE_CHECKING:
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

# imported on first use (sparsexc._lazy): importing one module of this package imports no other
_EXPORTS = {
    "all_gather_objects": "sparsexc.distributed.context",
    "all_reduce_sum": "sparsexc.distributed.context",
    "backend_for": "sparsexc.distributed.context",
    "is_distributed": "sparsexc.distributed.context",
    "is_main": "sparsexc.distributed.context",
    "process_group": "sparsexc.distributed.context",
    "rank": "sparsexc.distributed.context",
    "rank_device": "sparsexc.distributed.context",
    "shard_bounds": "sparsexc.distributed.context",
    "world_size": "sparsexc.distributed.context",
    "free_port": "sparsexc.distributed.launch",
    "relaunch_with_torchrun": "sparsexc.distributed.launch",
    "spawn": "sparsexc.distributed.launch",
    "ShardedOutputLayer": "sparsexc.distributed.sharded",
    "full_state_dict": "sparsexc.distributed.sharded",
    "gather_column_sets": "sparsexc.distributed.sharded",
    "gather_columns": "sparsexc.distributed.sharded",
    "label_shard": "sparsexc.distributed.sharded",
    "label_sharded": "sparsexc.distributed.sharded",
    "sharded_layers": "sparsexc.distributed.sharded",
    "sharded_logsumexp": "sparsexc.distributed.sharded",
    "sharded_pair_logits": "sparsexc.distributed.sharded",
    "sharded_softmax": "sparsexc.distributed.sharded",
    "sharded_topk": "sparsexc.distributed.sharded",
    "sum_over_shards": "sparsexc.distributed.sharded",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
