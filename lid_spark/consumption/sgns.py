"""Weighted skip-gram with negative sampling (SGNS) over a track graph, in torch.

The paper's objective (section 3.1.1): for every kept pair (i, j) with weight s_ij, maximise
``s_ij * log softmax_j(v'_i . v_j)``, the softmax approximated by negative sampling (Mikolov et
al. 2013)::

    loss = - sum_ij s_ij * [ log sigma(v'_i . v_j) + sum_{n ~ P} log sigma(-v'_i . v_n) ]

with separate *output* vectors v' (the source side) and *input* vectors v (what we export as the
track embedding), and negatives n drawn from the unigram distribution raised to 0.75.

Everything is deterministic under ``seed`` (shuffles and negatives come from one torch generator).
The same function runs one process (``world_size=1``) or one rank of a DistributedDataParallel
group (each rank trains on its slice of every batch; DDP averages the gradients).

Example
-------
>>> src = np.array([0, 1, 2, 3]); dst = np.array([1, 0, 3, 2])
>>> result = train_sgns(src, dst, np.ones(4), n_items=4, dim=8, epochs=2, batch_size=2)
>>> result.vectors.shape
(4, 8)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lid_spark.errors import ParameterError

OPTIMIZERS = ("sgd", "adam")


class SkipGram(torch.nn.Module):
    """Input vectors ``v`` and output vectors ``v'`` for ``n_items`` items; forward gives the loss.

    Example
    -------
    >>> model = SkipGram(10, 4)
    >>> loss = model(torch.tensor([0]), torch.tensor([1]), torch.tensor([[2, 3]]), torch.tensor([1.0]))
    >>> bool(loss > 0)
    True
    """

    def __init__(self, n_items: int, dim: int, sparse: bool = True):
        super().__init__()
        self.input = torch.nn.Embedding(n_items, dim, sparse=sparse)
        self.output = torch.nn.Embedding(n_items, dim, sparse=sparse)
        with torch.no_grad():  # word2vec's initialisation: small random inputs, zero outputs
            self.input.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.output.weight.zero_()

    def forward(self, src: torch.Tensor, dst: torch.Tensor, negatives: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        context = self.output(src)                                   # v'_i   (B, d)
        positive = (context * self.input(dst)).sum(-1)               # v'_i . v_j
        negative = torch.bmm(self.input(negatives), context.unsqueeze(-1)).squeeze(-1)  # (B, K)
        log_lik = torch.nn.functional.logsigmoid(positive) + torch.nn.functional.logsigmoid(-negative).sum(-1)
        return -(weight * log_lik).sum()


@dataclass
class SGNSResult:
    """``vectors`` (n_items, dim) float32: the input vectors v; ``losses``: mean loss per epoch."""

    vectors: np.ndarray
    context_vectors: np.ndarray
    losses: list[float] = field(default_factory=list)
    pairs_per_s: float = 0.0


def pair_weights(source: np.ndarray, score: np.ndarray, power: float) -> np.ndarray:
    """s_ij = (score_ij / max_j score_ij) ** power: each source's best neighbour weighs 1.

    Per-source normalisation makes the weight an increasing function of the score that does not
    depend on the score's scale (LLR or mutual proximity), and gives every track the same say.
    """
    score = np.asarray(score, dtype=np.float64)
    if np.any(~np.isfinite(score)) or np.any(score <= 0):
        raise ParameterError("pair scores must be finite and > 0 to become SGNS weights")
    if power < 0:
        raise ParameterError(f"embeddings.weight_power must be >= 0, got {power}")
    source = np.asarray(source)
    best = np.zeros(int(source.max()) + 1)
    np.maximum.at(best, source, score)
    return (score / best[source]) ** power


def noise_table(frequency: np.ndarray, power: float = 0.75, size: int | None = None) -> np.ndarray:
    """word2vec's table for negatives: item ids repeated in proportion to frequency ** power."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if frequency.ndim != 1 or len(frequency) == 0 or np.any(frequency < 0) or frequency.sum() <= 0:
        raise ParameterError("noise frequencies must be a non-empty 1-d array of non-negative counts")
    probs = frequency ** power
    probs /= probs.sum()
    size = size or max(1_000_000, 20 * len(frequency))
    counts = np.floor(probs * size).astype(np.int64)
    # give the rounding leftovers to the largest remainders so that every item keeps its share
    leftover = size - counts.sum()
    if leftover > 0:
        counts[np.argsort(-(probs * size - counts), kind="stable")[:leftover]] += 1
    return np.repeat(np.arange(len(frequency), dtype=np.int64), counts)


def train_sgns(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_items: int, *, dim: int = 64,
               epochs: int = 10, negatives: int = 5, learning_rate: float = 0.025, optimizer: str = "sgd",
               batch_size: int = 4096, seed: int = 13, frequency: np.ndarray | None = None,
               rank: int = 0, world_size: int = 1, torch_threads: int = 1) -> SGNSResult:
    """Train SGNS on weighted pairs ``src -> dst``.

    Parameters
    ----------
    src, dst : np.ndarray
        int item indices in ``[0, n_items)``, one per pair (give both directions for symmetry).
    weight : np.ndarray
        s_ij > 0 per pair (see :func:`pair_weights`); normalised here to mean 1.
    n_items : int
        vocabulary size.
    dim, epochs, negatives, learning_rate, batch_size, seed
        the usual; with ``optimizer="sgd"`` the rate decays linearly to 0.0001 of itself (word2vec),
        with ``"adam"`` it is sparse Adam's step size.
    frequency : np.ndarray, optional
        per-item counts for the noise distribution (default: how often each item is a ``dst``).
    rank, world_size : int
        inside a torch.distributed group: this rank trains on its slice of every batch.
    torch_threads : int
        torch intra-op threads while training (restored after). One is the default: the per-batch
        ops are small, and extra OpenMP threads mostly spin, which on a busy machine made training
        15 times slower than one thread. Scale out with processes (``world_size``) instead.

    Returns
    -------
    SGNSResult
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    _check(src, dst, weight, n_items, dim, epochs, negatives, learning_rate, optimizer, batch_size, torch_threads)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        return _train(src, dst, weight, n_items, dim, epochs, negatives, learning_rate, optimizer, batch_size, seed,
                      frequency, rank, world_size)
    finally:
        torch.set_num_threads(previous_threads)


def _train(src, dst, weight, n_items, dim, epochs, negatives, learning_rate, optimizer, batch_size, seed, frequency,
           rank, world_size) -> SGNSResult:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    distributed = world_size > 1
    model = SkipGram(n_items, dim, sparse=not distributed)
    module = model
    if distributed:
        # DDP averages dense gradients over the gloo group; every rank starts from rank 0's weights
        module = torch.nn.parallel.DistributedDataParallel(model)
    params = list(module.parameters())
    opt = (torch.optim.SGD(params, lr=learning_rate) if optimizer == "sgd" else
           (torch.optim.SparseAdam(params, lr=learning_rate) if not distributed else
            torch.optim.Adam(params, lr=learning_rate)))
    frequency = np.bincount(dst, minlength=n_items) if frequency is None else np.asarray(frequency)
    table = torch.from_numpy(noise_table(frequency + 1e-12))
    src_t, dst_t = torch.from_numpy(src), torch.from_numpy(dst)
    weight_t = torch.from_numpy((weight / weight.mean()).astype(np.float32))
    n_pairs = len(src)
    batches = (n_pairs + batch_size - 1) // batch_size
    total_steps = epochs * batches
    losses, step, trained, start = [], 0, 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n_pairs, generator=generator)
        epoch_loss = 0.0
        for b in range(batches):
            # every rank draws the same shuffles and negatives and takes its slice of each batch,
            # so all ranks run the same number of steps (DDP's all-reduce needs lockstep)
            batch = order[b * batch_size:(b + 1) * batch_size]
            negs_all = table[torch.randint(len(table), (len(batch), negatives), generator=generator)]
            step += 1
            idx, negs = batch[rank::world_size], negs_all[rank::world_size]
            if optimizer == "sgd":
                for group in opt.param_groups:
                    group["lr"] = learning_rate * max(1e-4, 1.0 - (step - 1) / total_steps)
            opt.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; scaling by world_size keeps the summed update of one process
            loss = module(src_t[idx], dst_t[idx], negs, weight_t[idx]) * world_size
            loss.backward()
            opt.step()
            epoch_loss += float(loss.detach()) / world_size
            trained += len(idx)
        losses.append(_sum_over_ranks(epoch_loss, distributed) / n_pairs)
    elapsed = time.perf_counter() - start
    # the group's throughput: every rank's pairs over the slowest rank's time
    trained = _sum_over_ranks(trained, distributed)
    elapsed = _sum_over_ranks(elapsed, distributed, op="max")
    return SGNSResult(
        vectors=model.input.weight.detach().numpy().astype(np.float32).copy(),
        context_vectors=model.output.weight.detach().numpy().astype(np.float32).copy(),
        losses=losses, pairs_per_s=trained / elapsed if elapsed > 0 else float("inf"))


def _sum_over_ranks(value: float, distributed: bool, op: str = "sum") -> float:
    if not distributed:
        return float(value)
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(tensor.item())


def _check(src, dst, weight, n_items, dim, epochs, negatives, learning_rate, optimizer, batch_size,
           torch_threads) -> None:
    if not (len(src) == len(dst) == len(weight)) or len(src) == 0:
        raise ParameterError(f"src, dst and weight must be non-empty and of one length, got "
                             f"{len(src)}, {len(dst)}, {len(weight)}")
    if src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n_items:
        raise ParameterError(f"item indices must lie in [0, {n_items})")
    if np.any(~np.isfinite(weight)) or np.any(weight <= 0):
        raise ParameterError("pair weights must be finite and > 0")
    for name, value in (("dim", dim), ("epochs", epochs), ("negatives", negatives), ("batch_size", batch_size),
                        ("torch_threads", torch_threads)):
        if int(value) < 1:
            raise ParameterError(f"embeddings.{name} must be >= 1, got {value}")
    if learning_rate <= 0:
        raise ParameterError(f"embeddings.learning_rate must be > 0, got {learning_rate}")
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"embeddings.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
