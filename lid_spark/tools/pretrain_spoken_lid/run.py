"""One pretraining run: generate the corpus, train, save the model directory, evaluate on held-out clips.

The report (``training.json`` in the model directory) holds the corpus size, the training summary,
the settings and the held-out accuracies of :func:`~.evaluate.evaluate`.

Example
-------
>>> from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings
>>> settings = PretrainSettings(languages=("en", "fr", "ta"), utterances_per_language=4,
...                             minutes=0.2, eval_utterances=2)
>>> report = pretrain(settings, "spoken-lid-model")          # doctest: +SKIP
>>> report["heldout_spoken"]["accuracy"]                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid.corpus import build_corpus
from lid_spark.tools.pretrain_spoken_lid.evaluate import evaluate
from lid_spark.tools.pretrain_spoken_lid.model_directory import check_init_dir, save_model
from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings, check_languages
from lid_spark.tools.pretrain_spoken_lid.train import train
from lid_spark.tools.pretrain_spoken_lid.utterances import HELD_OUT, LEGACY_TRAINING, TRAINING


def pretrain(settings: PretrainSettings, out_dir: str | Path, cache_dir: str | Path | None = None,
             log=None, init_dir: str | Path | None = None) -> dict:
    """Generate data, train, save to ``out_dir`` and evaluate on held-out spoken and sung clips.

    Parameters
    ----------
    settings : PretrainSettings
    out_dir : str or Path
        Model directory to write (loadable by ``SpokenLID.load(out_dir)``).
    cache_dir : str or Path, optional
        Where generated training features are cached between runs with the same data settings.
    init_dir : str or Path, optional
        A model directory of the same architecture and languages to continue training from.

    Returns
    -------
    dict
        The report (also written to ``out_dir/training.json``).
    """
    import torch

    from lid_spark.audio.spoken_lid import write_checksums
    from lid_spark.progress import step

    log = log or get_logger()
    settings.validate()
    check_languages(settings.languages)
    if init_dir is not None:
        check_init_dir(init_dir, settings.languages)
    torch.set_num_threads(settings.torch_threads)
    with step(f"generate training speech in {len(settings.languages)} languages", log):
        corpus = build_corpus(settings, cache_dir, log)
    with step(f"train ECAPA-TDNN for up to {settings.minutes:g} min", log):
        hparams, summary = train(settings, corpus, log, init_dir=init_dir)
    if init_dir is not None:
        summary["continued_from"] = json.loads((Path(init_dir) / "training.json").read_text()).get("training") \
            if (Path(init_dir) / "training.json").is_file() else str(init_dir)
    with step("save model", log):
        save_model(out_dir, settings, hparams)
    training_voices = LEGACY_TRAINING if settings.voices == "legacy" else TRAINING
    report = {"languages": list(settings.languages), "train_utterances": int(corpus.labels.size),
              "train_hours": round(corpus.seconds / 3600, 3), "training": summary,
              "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "languages"},
              "training_voices": [str(v) for v in training_voices.variants],
              "heldout_variants": [str(v) for v in HELD_OUT.variants],
              "separation": {k: v for k, v in settings.separation_settings().items() if k != "device"}}
    report.update(evaluate(out_dir, settings, log))
    report["model_bytes"] = sum(p.stat().st_size for p in Path(out_dir).iterdir() if p.is_file())
    (Path(out_dir) / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    write_checksums(out_dir)
    return report
