"""Train the embedded spoken-LID model (ECAPA-TDNN) on espeak-ng speech in many languages.

Writes a speechbrain model directory (hyperparams.yaml, embedding_model.ckpt, classifier.ckpt,
label_encoder.ckpt, checksums.json) that `audio.spoken_lid.source=<dir>` or
EncoderClassifier.from_hparams(source=<dir>) loads, plus training.json: accuracy on held-out
spoken, sung and separated clips by voices never heard in training (lid_spark.tools.voices).

  lid-spark pretrain_spoken_lid --out models/spoken_lid --minutes 16
  lid-spark pretrain_spoken_lid --out /tmp/m --languages en,fr,ta,ru --minutes 2
  lid-spark pretrain_spoken_lid --out models/v2 --init models/v1 --minutes 10   # continue training
"""

import json
from pathlib import Path

from lid_spark.jobs._cli import job_parser, parse_job_args, run_as_script

from lid_spark.progress import get_logger
from lid_spark.tools.pretrain_spoken_lid import HELDOUT_KINDS, pretrain, settings_from_config


def main(argv=None) -> int:
    parser = job_parser("pretrain_spoken_lid", __doc__)
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--languages", help="comma-separated espeak-ng voice codes "
                        "(default: pretrain_spoken_lid.languages, or the ten targets + 40 others)")
    parser.add_argument("--minutes", type=float, help="training time budget (pretrain_spoken_lid.minutes)")
    parser.add_argument("--cache", help="directory caching generated features (pretrain_spoken_lid.cache_dir)")
    parser.add_argument("--init", help="continue training from this model directory (same languages and sizes)")
    args = parser.parse_args(argv)
    extra = []
    if args.languages:
        languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
        extra.append(f"pretrain_spoken_lid.languages={json.dumps(languages)}")  # JSON is YAML: "no" stays a string
    if args.minutes is not None:
        extra.append(f"pretrain_spoken_lid.minutes={args.minutes}")
    if args.cache:
        extra.append(f"pretrain_spoken_lid.cache_dir={args.cache}")
    _, cfg = parse_job_args(parser, argv, extra_overrides=extra)
    section = cfg.pretrain_spoken_lid
    settings = settings_from_config(section, separation=cfg.audio.separation)
    out = Path(args.out).resolve()
    report = pretrain(settings, out, cache_dir=section.cache_dir, log=get_logger(), init_dir=args.init)
    summary = {key: report[key] for key in ("train_utterances", "train_hours", "training", "model_bytes")}
    summary.update({f"heldout_{kind}": {k: report[f"heldout_{kind}"][k] for k in ("accuracy", "class_accuracy")}
                    for kind in HELDOUT_KINDS})
    summary["model_dir"] = str(out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    run_as_script(main)
