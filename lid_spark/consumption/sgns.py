"""Weighted skip-gram with negative sampling (SGNS) over a track graph, in torch, CPU or GPU.

The paper's objective (section 3.1.1): for every kept pair (i, j) with weight s_ij, maximise
``s_ij * log softmax_j(v'_i . v_j)``, the softmax approximated by negative sampling (Mikolov et
al. 2013)::

    loss = - sum_ij s_ij * [ log sigma(v'_i . v_j) + (K / N) sum_{n in N(chunk)} log sigma(-v'_i . v_n) ]

with separate *output* vectors v' (the source side) and *input* vectors v (what we export as the
track embedding), and negatives n drawn from the unigram distribution raised to 0.75.

How it is made fast (each lever is measured in ``benchmarks/bench_sgns.py``):

- **Negatives shared per chunk.** Every ``chunk`` consecutive pairs of a batch share one draw of
  ``pool`` negatives (PyTorch-BigGraph's chunked negatives), so the negative scores of a batch are
  one batched matrix product ``(chunks, chunk, d) @ (chunks, d, pool)`` instead of a gather of
  ``K`` vectors per pair. Each negative term weighs ``K / pool``: in expectation the gradient is
  word2vec's with ``K`` negatives per pair, with less variance.
- **Fused sparse updates.** The gradients are written by hand (no autograd, no torch.optim) and
  applied to the two tables with one ``index_add_`` each: a batch touches only the rows it uses.
- **Large batches, no Python per pair**: one Python iteration per batch of ``batch_size`` pairs.
- **Pinned threads**: ``torch_threads`` intra-op threads while training (restored after).

The same code runs on a GPU (``device="cuda"``): the tables, the pairs of a shard and the noise
distribution live on the device. Everything is deterministic under ``seed`` on a CPU (shuffles and
negatives come from one torch generator); on a GPU ``index_add_`` adds in a nondeterministic
order, so reruns agree only to float rounding.

Example
-------
>>> src = np.array([0, 1, 2, 3]); dst = np.array([1, 0, 3, 2])
>>> result = train_sgns(src, dst, np.ones(4), n_items=4, dim=8, epochs=2, batch_size=2)
>>> result.vectors.shape
(4, 8)
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from lid_spark.errors import ParameterError

OPTIMIZERS = ("sgd", "adam")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
# Pairs that share one draw of negatives, and how many they share. 64 x 64 keeps about one
# negative draw per pair (as many vectors pushed away per epoch as word2vec's K=5 pushes, within
# a small factor) while the products are matrix-sized; benchmarks/bench_sgns.py measures others.
CHUNK = 64
POOL = 16
MIN_RATE = 1e-4  # word2vec: the rate decays linearly to this share of itself
LOSS_STRIDE = 8  # the reported loss's negative term: every 8th chunk of a batch (an unbiased estimate)


@dataclass
class SGNSResult:
    """``vectors`` (n_items, dim) float32: the input vectors v; ``losses``: mean loss per epoch."""

    vectors: np.ndarray
    context_vectors: np.ndarray
    losses: list[float] = field(default_factory=list)
    pairs_per_s: float = 0.0
    device: str = "cpu"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: the first visible CUDA device when there is one, else the CPU; ``cpu``, ``cuda[:N]`` as given.

    Example
    -------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise ParameterError(f"embeddings.device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError(f"embeddings.device is {device!r} but no CUDA device is visible (use auto or cpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ParameterError(f"embeddings.device is {device!r} but only {torch.cuda.device_count()} "
                                 "CUDA device(s) are visible")
        return torch.device(f"cuda:{index}")
    return torch.device("cpu")


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


def noise_cdf(frequency: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Cumulative distribution of the negatives: item i with probability frequency_i ** power / Z.

    Sampled by ``searchsorted`` of uniforms: exact (word2vec's table rounds small shares away) and
    8 bytes per item, so a 10^7-track catalog needs 80 MB for it.

    Example
    -------
    >>> noise_cdf(np.array([1.0, 16.0, 0.0])).round(4).tolist()
    [0.1111, 1.0, 1.0]
    """
    frequency = np.asarray(frequency, dtype=np.float64)
    if frequency.ndim != 1 or len(frequency) == 0 or np.any(~np.isfinite(frequency)) or np.any(frequency < 0) \
            or frequency.sum() <= 0:
        raise ParameterError("noise frequencies must be a non-empty 1-d array of non-negative counts")
    cdf = np.cumsum(frequency ** power)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


class SGNSModel:
    """The two tables and the fused update; one instance trains one process's (or one bucket's) pairs.

    Parameters
    ----------
    input, output : torch.Tensor
        (n_items, dim) float32 tables on ``device``; updated in place.
    frequency : np.ndarray
        per-item counts of the noise distribution (items of these tables only).
    negatives : int
        K, word2vec's negatives per pair: the weight of the negative term.
    optimizer : str
        ``sgd`` (the rate given per call) or ``adam`` (lazy Adam on the rows a batch touches).
    generator : torch.Generator
        on ``device``: shuffles and negatives.
    """

    def __init__(self, input: torch.Tensor, output: torch.Tensor, frequency: np.ndarray, *, negatives: int,
                 optimizer: str, generator: torch.Generator, chunk: int = CHUNK, pool: int = POOL):
        self.input, self.output, self.generator = input, output, generator
        self.device = input.device
        self.cdf = torch.from_numpy(noise_cdf(np.asarray(frequency, dtype=np.float64) + 1e-12)).to(self.device)
        self.chunk, self.pool, self.scale = int(chunk), int(pool), float(negatives) / float(pool)
        self.optimizer = optimizer
        if optimizer == "adam":
            self.moments = {name: (torch.zeros_like(t), torch.zeros_like(t))
                            for name, t in (("input", input), ("output", output))}
            self.adam_step = 0

    @classmethod
    def initial(cls, n_items: int, dim: int, frequency: np.ndarray, *, seed: int, device: torch.device,
                **kwargs) -> SGNSModel:
        """word2vec's initialisation: small random inputs (uniform in +-0.5/dim), zero outputs."""
        generator = torch.Generator(device=device).manual_seed(seed)
        input = torch.rand(n_items, dim, generator=generator, device=device).sub_(0.5).div_(dim)  # in place: no 3x peak
        output = torch.zeros(n_items, dim, device=device)
        return cls(input, output, frequency, generator=generator, **kwargs)

    def draw_negatives(self, chunks: int) -> torch.Tensor:
        uniform = torch.rand(chunks * self.pool, generator=self.generator, device=self.device, dtype=torch.float64)
        return torch.searchsorted(self.cdf, uniform).clamp_(max=len(self.cdf) - 1)

    def step(self, src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor, rate: float) -> torch.Tensor:
        """One batch: gradients by hand, fused sparse updates; returns the batch's summed loss (a tensor).

        The loss's negative term is estimated on every ``LOSS_STRIDE``-th chunk (it is only reported).
        """
        c, d = self.chunk, self.input.shape[1]
        chunks = -(-len(src) // c)
        pad = chunks * c - len(src)
        if pad:  # a zero weight makes the padding pairs' gradients zero
            src = torch.cat([src, src.new_zeros(pad)])
            dst = torch.cat([dst, dst.new_zeros(pad)])
            weight = torch.cat([weight, weight.new_zeros(pad)])
        neg_idx = self.draw_negatives(chunks)
        context = self.output.index_select(0, src)                          # v'_i      (B, d)
        target = self.input.index_select(0, dst)                            # v_j       (B, d)
        noise = self.input.index_select(0, neg_idx).view(chunks, self.pool, d)
        positive = (context * target).sum(1)                                 # v'_i . v_j
        negative = torch.bmm(context.view(chunks, c, d), noise.transpose(1, 2))   # (chunks, c, pool)
        # -rate * d loss / d score: -rate w (sigma(s) - 1) for the pair, -rate w K/pool sigma(s) per negative
        # (sigmoid through exp: torch's CPU sigmoid kernel is several times slower)
        g_pos = _sigmoid(positive).sub_(1.0).mul_(weight).mul_(-rate)
        g_neg = _sigmoid(negative).mul_((weight * (-rate * self.scale)).view(chunks, c, 1))
        g_context = torch.baddbmm(g_pos.view(chunks, c, 1) * target.view(chunks, c, d), g_neg, noise).view(-1, d)
        g_target = g_pos.unsqueeze(1) * context
        g_noise = torch.bmm(g_neg.transpose(1, 2), context.view(chunks, c, d)).view(-1, d)
        if self.optimizer == "sgd":
            # scatter_add_ is index_add_'s result, and the faster kernel on CPU (index_add_ with alpha: 4x slower)
            self.output.scatter_add_(0, src.unsqueeze(1).expand(-1, d), g_context)
            self.input.scatter_add_(0, dst.unsqueeze(1).expand(-1, d), g_target)
            self.input.scatter_add_(0, neg_idx.unsqueeze(1).expand(-1, d), g_noise)
        else:  # the same gradients, unscaled, through lazy Adam
            self.adam_step += 1
            self._adam("output", self.output, src, g_context / -rate, rate)
            self._adam("input", self.input, torch.cat([dst, neg_idx]), torch.cat([g_target, g_noise]) / -rate, rate)
        sample = negative[::LOSS_STRIDE]
        loss = torch.nn.functional.logsigmoid(positive).mul_(weight).sum()
        loss += (torch.nn.functional.logsigmoid(sample.neg_()).sum(2).view(-1)
                 .mul_(weight.view(chunks, c)[::LOSS_STRIDE].reshape(-1)).sum() * (self.scale * chunks / len(sample)))
        return -loss

    def _adam(self, name, table, rows, grads, rate, betas=(0.9, 0.999), eps=1e-8):
        """torch's SparseAdam on the rows of this batch (moments of other rows are left alone)."""
        unique, inverse = torch.unique(rows, return_inverse=True)
        grad = torch.zeros(len(unique), table.shape[1], device=table.device).index_add_(0, inverse, grads)
        m, v = self.moments[name]
        m_rows = m.index_select(0, unique).mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        v_rows = v.index_select(0, unique).mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        m.index_copy_(0, unique, m_rows)
        v.index_copy_(0, unique, v_rows)
        correction1 = 1 - betas[0] ** self.adam_step
        correction2 = 1 - betas[1] ** self.adam_step
        update = (m_rows / correction1) / ((v_rows / correction2).sqrt_().add_(eps))
        table.index_add_(0, unique, update, alpha=-rate)

    def result(self, losses: list[float], pairs_per_s: float) -> SGNSResult:
        # the tables themselves on a CPU (no second copy of 2 x n x d floats); the model is done with them
        return SGNSResult(vectors=self.input.detach().cpu().numpy(), context_vectors=self.output.detach().cpu().numpy(),
                          losses=losses, pairs_per_s=pairs_per_s, device=str(self.device))

    def train_pairs(self, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, *, batch_size: int,
                    rate_from: float, rate_to: float) -> float:
        """One pass over these pairs in a random order; the rate goes linearly from ``rate_from`` to ``rate_to``.

        Returns the summed loss (a float; one device synchronisation per call).
        """
        n = len(src)
        src_t = torch.as_tensor(src).to(self.device, torch.int64)
        dst_t = torch.as_tensor(dst).to(self.device, torch.int64)
        weight_t = torch.as_tensor(weight).to(self.device, torch.float32)
        order = torch.randperm(n, generator=self.generator, device=self.device)
        total = torch.zeros((), device=self.device)
        batches = -(-n // batch_size)
        for b in range(batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            rate = rate_from + (rate_to - rate_from) * (b / batches)
            total += self.step(src_t[idx], dst_t[idx], weight_t[idx], rate)
        return float(total)


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-x)), a new tensor; exp overflowing to inf gives 0, as it should."""
    return torch.exp(-x).add_(1.0).reciprocal_()


def rate_at(learning_rate: float, done: float, total: float) -> float:
    """word2vec's linearly decaying rate after ``done`` of ``total`` pairs."""
    return learning_rate * max(MIN_RATE, 1.0 - done / total)


def train_epochs(model: SGNSModel, shards: Callable[[int], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                 n_pairs: int, *, epochs: int, learning_rate: float, batch_size: int) -> tuple[list[float], float]:
    """``epochs`` passes; ``shards(epoch)`` yields the pair arrays (src, dst, weight) of that epoch.

    Returns the mean loss per epoch and pairs/s (pairs x epochs over the wall time, device synchronised).
    """
    losses, done, total, start = [], 0, float(epochs * n_pairs), time.perf_counter()
    for epoch in range(epochs):
        epoch_loss = 0.0
        for src, dst, weight in shards(epoch):
            epoch_loss += model.train_pairs(src, dst, weight, batch_size=batch_size,
                                            rate_from=rate_at(learning_rate, done, total),
                                            rate_to=rate_at(learning_rate, done + len(src), total))
            done += len(src)
        losses.append(epoch_loss / n_pairs)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    elapsed = time.perf_counter() - start
    return losses, (done / elapsed if elapsed > 0 else math.inf)


def train_sgns(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_items: int, *, dim: int = 64,
               epochs: int = 10, negatives: int = 5, learning_rate: float = 0.025, optimizer: str = "sgd",
               batch_size: int = 4096, seed: int = 13, frequency: np.ndarray | None = None, torch_threads: int = 1,
               device: str = "cpu", chunk: int = CHUNK, pool: int = POOL) -> SGNSResult:
    """Train SGNS on weighted pairs ``src -> dst`` held in memory (see :mod:`.pair_shards` for a stream).

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
        with ``"adam"`` it is (lazy, sparse) Adam's step size.
    frequency : np.ndarray, optional
        per-item counts for the noise distribution (default: how often each item is a ``dst``).
    torch_threads : int
        torch intra-op threads while training (restored after).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    chunk, pool : int
        pairs that share one draw of negatives, and how many negatives they share.

    Returns
    -------
    SGNSResult
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    check_pairs(src, dst, weight, n_items)
    check_params(dim=dim, epochs=epochs, negatives=negatives, learning_rate=learning_rate, optimizer=optimizer,
                 batch_size=batch_size, torch_threads=torch_threads, chunk=chunk, pool=pool)
    frequency = np.bincount(dst, minlength=n_items) if frequency is None else np.asarray(frequency)
    weight = (weight / weight.mean()).astype(np.float32)
    with pinned_threads(torch_threads):
        model = SGNSModel.initial(n_items, dim, frequency, seed=seed, device=resolve_device(device),
                                  negatives=negatives, optimizer=optimizer, chunk=chunk, pool=pool)
        losses, pairs_per_s = train_epochs(model, lambda epoch: [(src, dst, weight)], len(src), epochs=epochs,
                                           learning_rate=learning_rate, batch_size=batch_size)
    return model.result(losses, pairs_per_s)


class pinned_threads:
    """Context manager: ``torch.set_num_threads(n)`` inside, the previous count restored after."""

    def __init__(self, n: int):
        self.n = int(n)

    def __enter__(self):
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.previous)


def check_pairs(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n_items: int) -> None:
    if not (len(src) == len(dst) == len(weight)) or len(src) == 0:
        raise ParameterError(f"src, dst and weight must be non-empty and of one length, got "
                             f"{len(src)}, {len(dst)}, {len(weight)}")
    if src.min() < 0 or dst.min() < 0 or max(src.max(), dst.max()) >= n_items:
        raise ParameterError(f"item indices must lie in [0, {n_items})")
    if np.any(~np.isfinite(weight)) or np.any(weight <= 0):
        raise ParameterError("pair weights must be finite and > 0")


def check_params(*, dim, epochs, negatives, learning_rate, optimizer, batch_size, torch_threads, chunk=CHUNK,
                 pool=POOL) -> None:
    for name, value in (("dim", dim), ("epochs", epochs), ("negatives", negatives), ("batch_size", batch_size),
                        ("torch_threads", torch_threads), ("chunk", chunk), ("pool", pool)):
        if int(value) < 1:
            raise ParameterError(f"embeddings.{name} must be >= 1, got {value}")
    if learning_rate <= 0:
        raise ParameterError(f"embeddings.learning_rate must be > 0, got {learning_rate}")
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"embeddings.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
