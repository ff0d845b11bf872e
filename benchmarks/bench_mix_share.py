"""What the spoken-LID model reads best: separated vocals alone, or with some of the mixture added back.

Songs of the synthetic world (``synth.voices``, default ``held_out``: voices the embedded model never
heard), one 5 s excerpt from each song's first sung note, as ``pretrain_spoken_lid``'s held-out
``catalog_*`` kinds: the clean vocal stem, the mixture, and for each separator (the pretrained
default, the soft mask) the segment audio the pipeline embeds at each ``audio.segments.mix_share``
(:func:`lid_spark.audio.pipeline.embedded_segments`). Reported: top-1 accuracy over the model's
languages and accuracy over our classes on target-language clips, each with a 95 % Wilson interval,
and the paired bootstrap interval of the difference between the configured ``mix_share`` and 0.

    python benchmarks/bench_mix_share.py [--quick] [--songs-per-language 4] [--model DIR] [key=value ...]

Prints ONE JSON object: ``figure`` (accuracy at the configured mix_share, pretrained separator),
``peer`` (the same separator's vocals alone, mix_share 0) and their ``ratio``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

MIX_SHARES = (0.0, 0.1, 0.2, 0.3, 0.5)
RESAMPLES = 2000


def wilson(hits: np.ndarray) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(int(hits.sum()), int(hits.size)).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict:
    """Mean of a - b (per-clip hits) with its 95 % bootstrap interval over clips."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(RESAMPLES, a.size))
    diffs = (a[idx] - b[idx]).mean(axis=1)
    return {"difference": round(float((a - b).mean()), 4),
            "interval": [round(float(np.quantile(diffs, 0.025)), 4), round(float(np.quantile(diffs, 0.975)), 4)]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 song per language (50 clips)")
    parser.add_argument("--songs-per-language", type=int, default=4)
    parser.add_argument("--voices", default="held_out", help="synth.voices of the songs (all | training | held_out)")
    parser.add_argument("--model", default="embedded", help="audio.spoken_lid.source (a directory or embedded)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("overrides", nargs="*", help="config key=value (audio.separation.*, audio.segments.mix_share)")
    args = parser.parse_args(argv)

    import torch

    from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
    from lid_spark.audio.pipeline import embedded_segments
    from lid_spark.audio.separation import make_separator, separator_from_config
    from lid_spark.audio.spoken_lid import SpokenLID, language_class, target_scores
    from lid_spark.config import load_config
    from lid_spark.tools.pretrain_spoken_lid.evaluate import CLIP_SECONDS, _catalog_excerpts, _normalised
    from lid_spark.tools.synth.params import SynthParams

    cfg = load_config(overrides=args.overrides)
    torch.set_num_threads(max(1, cfg.audio.udf.torch_threads))
    lid = SpokenLID.load(args.model, device="cpu")
    languages = sorted({label.split(":")[0].strip() for label in lid.languages})
    targets = tuple(lang for lang in languages if lang in TARGET_LANGUAGES)
    others = tuple(lang for lang in languages if lang not in targets)
    songs = 1 if args.quick else args.songs_per_language
    params = SynthParams(seed=args.seed, seconds=CLIP_SECONDS + 4.0, sample_rate=cfg.audio.sample_rate,
                         targets=targets, other_languages=others, voices=args.voices, instrumental_share=0.0,
                         bilingual_song_share=0.0, bilingual_artist_share=0.0, intro_seconds=(1.0, 2.0),
                         tracks=songs * len(languages))
    started = time.perf_counter()
    excerpts = _catalog_excerpts(params)
    sr = cfg.audio.sample_rate
    truth_language = [language for language, _, _ in excerpts]
    label_of = {label.split(":")[0].strip(): i for i, label in enumerate(lid.languages)}
    truth = np.array([label_of[language] for language in truth_language])
    true_class = np.array([language_class(lid.languages[t]) for t in truth])

    def hits(waves) -> tuple[np.ndarray, np.ndarray]:
        _, posteriors = lid.embed([_normalised(w) for w in waves], batch_size=16)
        scores = target_scores(posteriors, lid.languages)
        classes = list(scores)
        predicted_class = np.array(classes)[np.stack([scores[c] for c in classes], axis=1).argmax(axis=1)]
        return (posteriors.argmax(axis=1) == truth).astype(float), (predicted_class == true_class).astype(float)

    on_targets = true_class != OTHER_LANGUAGE
    rows, by_name = {}, {}

    def record(name: str, waves) -> None:
        top1, cls = hits(waves)
        by_name[name] = top1
        rows[name] = {"accuracy": round(float(top1.mean()), 4), "accuracy_interval": wilson(top1),
                      "target_class_accuracy": round(float(cls[on_targets].mean()), 4),
                      "target_class_interval": wilson(cls[on_targets])}

    record("vocal stem", [vocals for _, _, vocals in excerpts])
    record("mixture", [mix for _, mix, _ in excerpts])
    separators = {cfg.audio.separation.backend: separator_from_config(cfg)}
    separators.setdefault("softmask", make_separator("softmask"))
    shares = sorted(set(MIX_SHARES) | {float(cfg.audio.segments.mix_share)})
    for name, separator in separators.items():
        separated = separator.separate_many([mix for _, mix, _ in excerpts], sr)
        for share in shares:
            waves = [embedded_segments(vocals, mix, [(0, mix.size)], share)[0]
                     for (_, mix, _), vocals in zip(excerpts, separated)]
            record(f"{name}, mix_share {share:g}", waves)
    backend, share = cfg.audio.separation.backend, float(cfg.audio.segments.mix_share)
    figure, peer = rows[f"{backend}, mix_share {share:g}"], rows[f"{backend}, mix_share 0"]
    result = {"benchmark": "mix_share", "quick": bool(args.quick), "model": args.model, "voices": args.voices,
              "clips": int(truth.size), "target_clips": int(on_targets.sum()), "languages": len(languages),
              "separator": backend, "mix_share": share,
              "figure": figure["accuracy"], "peer": peer["accuracy"],
              "ratio": round(figure["accuracy"] / peer["accuracy"], 3) if peer["accuracy"] else None,
              "difference": paired_difference(by_name[f"{backend}, mix_share {share:g}"],
                                              by_name[f"{backend}, mix_share 0"]),
              "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
