"""SGNS across processes with Spark's TorchDistributor (DistributedDataParallel, gloo on CPU).

TorchDistributor starts ``num_processes`` torch processes: on the driver in ``local_mode`` (a
local Spark session), or as a barrier stage of Spark tasks on the executors (a cluster). Each
process joins one gloo process group, trains its slice of every batch
(:func:`~lid_spark.consumption.sgns.train_sgns` with ``rank`` / ``world_size``) and DDP
all-reduces the gradients, so every rank ends with the same vectors.

The pairs travel to the processes inside the pickled training function, so this path suits
graphs whose pair arrays fit in each process's memory (10^8 pairs is about 2.4 GB of int64 +
float32): the model (two n_items x dim tables) is what is replicated anyway.
"""

from __future__ import annotations

import numpy as np

from lid_spark.consumption.sgns import SGNSResult
from lid_spark.errors import ParameterError


def _train_rank(src, dst, weight, n_items, frequency, kwargs):
    import torch.distributed as dist

    from lid_spark.consumption.sgns import train_sgns

    dist.init_process_group("gloo")
    try:
        # every rank returns the same replica: TorchDistributor keeps whichever process writes last
        return train_sgns(src, dst, weight, n_items, frequency=frequency, rank=dist.get_rank(),
                          world_size=dist.get_world_size(), **kwargs)
    finally:
        dist.destroy_process_group()


def train_sgns_distributed(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_items: int, *,
                           num_processes: int, local_mode: bool, frequency: np.ndarray | None = None,
                           **kwargs) -> SGNSResult:
    """Train SGNS with ``num_processes`` DDP processes through ``TorchDistributor``.

    Parameters
    ----------
    src, dst, weight, n_items, frequency
        as for :func:`~lid_spark.consumption.sgns.train_sgns`.
    num_processes : int
        torch processes (>= 2; one process is plain :func:`train_sgns`).
    local_mode : bool
        True: processes on the driver (local Spark); False: on the executors (a cluster).
    **kwargs
        dim, epochs, negatives, learning_rate, optimizer, batch_size, seed.
    """
    from pyspark.ml.torch.distributor import TorchDistributor

    if num_processes < 2:
        raise ParameterError(f"embeddings.num_processes must be >= 2 for distributed training, got {num_processes}")
    distributor = TorchDistributor(num_processes=num_processes, local_mode=local_mode, use_gpu=False)
    return distributor.run(_train_rank, np.asarray(src), np.asarray(dst), np.asarray(weight), int(n_items),
                           None if frequency is None else np.asarray(frequency), dict(kwargs))
