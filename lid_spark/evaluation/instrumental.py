"""Instrumental detection: how many instrumental tracks are tagged ``zxx``, and how many sung ones are.

A track is tagged instrumental (``zxx``) when its audio was read and the separated vocals hold no
vocal segment (``audio_status`` ``no_vocals``, :func:`lid_spark.tagging.is_instrumental`). With a
table saying which tracks are instrumental (``evaluation.instrumental_truth``: ``track_id``,
``is_instrumental``; the synthetic world writes one as ``truth/``), the report gives both rates.

Example
-------
>>> import pandas as pd
>>> truth = pd.DataFrame({"track_id": ["a", "b", "c", "d"], "is_instrumental": [True, True, False, False]})
>>> status = pd.DataFrame({"track_id": ["a", "b", "c"], "status": ["no_vocals", "ok", "ok"]})
>>> r = instrumental_detection(truth, status)
>>> r["instrumental_tagged_zxx"], r["sung_tagged_zxx"], r["sung_without_status"]
(0.5, 0.0, 1)
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from lid_spark.schemas import STATUS_NO_VOCALS

# The bars: at least this share of instrumentals tagged zxx, at most this share of sung tracks.
MIN_INSTRUMENTAL_ZXX = 0.95
MAX_SUNG_ZXX = 0.01


def instrumental_detection(truth: pd.DataFrame, status: pd.DataFrame, rule: str = "") -> dict:
    """Shares of instrumental and of sung tracks whose status is ``no_vocals`` (tagged ``zxx``).

    Tracks of ``truth`` without a status row are counted apart (``*_without_status``), not dropped;
    the shares are over the tracks with a status.
    """
    merged = truth[["track_id", "is_instrumental"]].merge(status[["track_id", "status"]], on="track_id", how="left")
    out: dict = {"rule": rule}
    for name, rows in (("instrumental", merged[merged["is_instrumental"].astype(bool)]),
                       ("sung", merged[~merged["is_instrumental"].astype(bool)])):
        known = rows[rows["status"].notna()]
        zxx = int((known["status"] == STATUS_NO_VOCALS).sum())
        out[f"{name}_tracks"] = int(len(known))
        out[f"{name}_tagged_zxx_count"] = zxx
        out[f"{name}_tagged_zxx"] = round(zxx / len(known), 4) if len(known) else None
        out[f"{name}_without_status"] = int(len(rows) - len(known))
    instrumental, sung = out["instrumental_tagged_zxx"], out["sung_tagged_zxx"]
    out["checks"] = [
        {"check": f"instrumentals tagged zxx >= {MIN_INSTRUMENTAL_ZXX:.0%}",
         "passed": None if instrumental is None else instrumental >= MIN_INSTRUMENTAL_ZXX},
        {"check": f"sung tracks tagged zxx <= {MAX_SUNG_ZXX:.0%}",
         "passed": None if sung is None else sung <= MAX_SUNG_ZXX}]
    return out


def detection_rule(cfg) -> str:
    """The settings that decide "no vocals", in words (for the report)."""
    seg, sep = cfg.audio.segments, cfg.audio.separation
    return (f"no vocal segment of at least {seg.min_seconds:g} s in the {sep.backend} separator's vocals, a frame "
            f"being voiced within {seg.top_db:g} dB of the track's loudest, above {seg.floor_db} dBFS and at least "
            f"{seg.min_share_db} dB of the mixture (audio.segments.min_seconds, top_db, floor_db, min_share_db)")


def read_instrumental_detection(spark, cfg) -> dict | None:
    """:func:`instrumental_detection` of ``evaluation.instrumental_truth`` and ``audio_status``; None when unset."""
    source = cfg.evaluation.instrumental_truth
    if not source:
        return None
    from lid_spark.tables import parse_table_ref, read_table, resolve_table

    truth = read_table(spark, parse_table_ref(str(source))).select("track_id", "is_instrumental").toPandas()
    status = read_table(spark, resolve_table(cfg, "audio_status")).select("track_id", "status").toPandas()
    return instrumental_detection(truth, status, detection_rule(cfg))


def instrumental_markdown(detection: Mapping) -> list[str]:
    """The report's section on instrumental detection."""
    def share(key):
        value, count = detection[f"{key}_tagged_zxx"], detection[f"{key}_tagged_zxx_count"]
        return "n/a" if value is None else f"{value:.1%} ({count} of {detection[f'{key}_tracks']})"

    lines = ["## Instrumental detection (tag zxx)", "",
             f"Rule: {detection['rule']}.", "",
             "| tracks | tagged zxx | without a status |", "|---|---:|---:|",
             f"| instrumental | {share('instrumental')} | {detection['instrumental_without_status']} |",
             f"| sung | {share('sung')} | {detection['sung_without_status']} |", "",
             "| check | result |", "|---|---|"]
    lines += [f"| {c['check']} | {'n/a' if c['passed'] is None else ('pass' if c['passed'] else 'FAIL')} |"
              for c in detection["checks"]]
    return lines + [""]
