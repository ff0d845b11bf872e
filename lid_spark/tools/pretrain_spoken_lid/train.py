"""The training loop: language-balanced batches of random crops with SpecAugment masks, AdamW, cosine rate.

Example
-------
>>> from lid_spark.tools.pretrain_spoken_lid.corpus import build_corpus
>>> from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings
>>> settings = PretrainSettings(languages=("en", "ta"), utterances_per_language=2, max_steps=3, batch_size=4)
>>> hparams, summary = train(settings, build_corpus(settings))   # doctest: +SKIP
>>> summary["steps"]                                              # doctest: +SKIP
3
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid.corpus import Corpus
from lid_spark.tools.pretrain_spoken_lid.model_directory import check_init_dir, hyperparams_yaml, load_weights
from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings


def language_balanced_batch(corpus: Corpus, by_lang: list[np.ndarray], rng: np.random.Generator,
                            settings: PretrainSettings):
    """A language-balanced batch of random crops of one random length, with SpecAugment masks."""
    import torch

    length = int(rng.integers(settings.crop_frames[0], settings.crop_frames[1] + 1))
    langs = rng.integers(0, len(by_lang), settings.batch_size)
    rows = []
    for k in langs:
        feats = corpus.features[by_lang[k][rng.integers(len(by_lang[k]))]]
        if feats.shape[0] < length:
            feats = feats.repeat((length // feats.shape[0]) + 1, 1)
        start = int(rng.integers(0, feats.shape[0] - length + 1))
        crop = feats[start:start + length].float().clone()
        if "specaugment" in settings.augmentations:   # SpecAugment-style masks
            if rng.random() < 0.5:  # frequency mask
                f0, width = int(rng.integers(0, crop.shape[1])), int(rng.integers(1, 8))
                crop[:, f0:f0 + width] = crop.mean()
            if rng.random() < 0.5:  # time mask
                t0, width = int(rng.integers(0, length)), int(rng.integers(1, 20))
                crop[t0:t0 + width] = crop.mean()
        rows.append(crop)
    return torch.stack(rows), torch.from_numpy(langs)


def train(settings: PretrainSettings, corpus: Corpus, log=None,
          init_dir: str | Path | None = None) -> tuple[dict, dict]:
    """Train embedding model + classifier on ``corpus``; returns (hparams dict, training summary).

    The learning rate follows a cosine from ``learning_rate`` to 5% of it over the time budget,
    so a run stopped by ``minutes`` still ends annealed. ``init_dir`` continues from the weights
    of an earlier model directory instead of a random start.
    """
    import torch
    from hyperpyyaml import load_hyperpyyaml

    log = log or get_logger()
    torch.manual_seed(settings.seed)
    n_languages = len(settings.languages)
    hparams = load_hyperpyyaml(hyperparams_yaml(settings, n_languages))
    if init_dir is not None:
        check_init_dir(init_dir, settings.languages)
        load_weights(hparams, init_dir)
        log.info("continuing from the weights in %s", init_dir)
    embedding_model, classifier = hparams["embedding_model"], hparams["classifier"]
    norm = hparams["mean_var_norm"]
    params = list(embedding_model.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=1e-4)
    rng = np.random.default_rng([settings.seed, 99])
    by_lang = [np.flatnonzero(corpus.labels == k) for k in range(n_languages)]
    budget = settings.minutes * 60.0
    embedding_model.train()
    classifier.train()
    started = time.perf_counter()
    step, loss_avg, acc_avg = 0, None, None
    while step < settings.max_steps:
        elapsed = time.perf_counter() - started
        if elapsed >= budget:
            break
        lr = settings.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        feats, target = language_balanced_batch(corpus, by_lang, rng, settings)
        feats = norm(feats, torch.ones(feats.shape[0]))
        log_post = classifier(embedding_model(feats)).squeeze(1)
        loss = torch.nn.functional.nll_loss(log_post, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        step += 1
        acc = float((log_post.argmax(1) == target).float().mean())
        loss_value = loss.item()
        loss_avg = loss_value if loss_avg is None else 0.95 * loss_avg + 0.05 * loss_value
        acc_avg = acc if acc_avg is None else 0.95 * acc_avg + 0.05 * acc
        if step % 25 == 0:
            log.info("step %d  loss %.3f  batch accuracy %.2f  lr %.5f  (%.0f/%.0f s)", step, loss_avg, acc_avg,
                     lr, elapsed, budget)
    embedding_model.eval()
    classifier.eval()
    summary = {"steps": step, "seconds": round(time.perf_counter() - started, 1),
               "final_loss": round(loss_avg or float("nan"), 4),
               "final_batch_accuracy": round(acc_avg or float("nan"), 4)}
    return hparams, summary
