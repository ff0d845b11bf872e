"""Planted feature tables for the classifier tests: Gaussian language clusters per modality.

Every language has a centre in each modality; a track's features are its language's centre plus
an artist offset plus noise whose size is set per modality, so the test controls how much each
modality knows. Noise is independent across modalities, hence combining them must help. The
spoken-LID posteriors lean weakly to the true language (a poor direct classifier).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import types as T

from lid_spark import LANGUAGE_CLASSES
from lid_spark.schemas import (
    AUDIO_STATUS,
    EMBEDDINGS_SCHEMA,
    STATUS_MISSING,
    STATUS_NO_VOCALS,
    STATUS_OK,
    TIMBRAL_FEATURES,
    VOCAL_SEGMENTS,
)

DIMS = {"consumption": 8, "timbral": 8, "vocals": 12}
NOISE = {"consumption": 0.8, "timbral": 1.3, "vocals": 1.0}


def make_world(tracks_per_language: int = 30, tracks_per_artist: int = 3, seed: int = 0,
               noise: dict | None = None, missing_consumption: float = 0.1, no_vocals: float = 0.05,
               missing_audio: float = 0.03) -> dict[str, pd.DataFrame]:
    """pandas frames shaped like the feature tables and inputs: tracks, labels, consumption,
    timbral, segments, status."""
    rng = np.random.default_rng(seed)
    noise = {**NOISE, **(noise or {})}
    centres = {m: rng.normal(0, 1, (len(LANGUAGE_CLASSES), d)) for m, d in DIMS.items()}
    tracks, labels, consumption, timbral, segments, status = [], [], [], [], [], []
    n = 0
    for li, lang in enumerate(LANGUAGE_CLASSES):
        n_artists = int(np.ceil(tracks_per_language / tracks_per_artist))
        for a in range(n_artists):
            artist = f"ar_{lang}_{a}"
            offset = {m: rng.normal(0, 0.3, d) for m, d in DIMS.items()}
            for _ in range(tracks_per_artist):
                track = f"tr{n:05d}"
                n += 1
                tracks.append((track, artist, f"audio/{track}.wav", 12.0))
                labels.append((track, lang))

                def vec(m, li=li, offset=offset):
                    return (centres[m][li] + offset[m] + rng.normal(0, noise[m], DIMS[m])).astype(np.float32)

                if rng.random() >= missing_consumption:
                    consumption.append((track, vec("consumption").tolist(), "sgns-test"))
                if rng.random() < missing_audio:
                    status.append((track, STATUS_MISSING, "not found", None, 0, None, "audio-test"))
                    continue
                timbral.append((track, vec("timbral").tolist(), "audio-test"))
                if rng.random() < no_vocals:
                    status.append((track, STATUS_NO_VOCALS, None, 0.0, 0, 12.0, "audio-test"))
                    continue
                song_vocals = vec("vocals")
                n_seg = int(rng.integers(1, 5))
                start = 0.0
                for s in range(n_seg):
                    length = float(rng.uniform(1.0, 3.0))
                    emb = song_vocals + rng.normal(0, 0.5, DIMS["vocals"]).astype(np.float32)
                    logits = rng.normal(0, 1, len(LANGUAGE_CLASSES))
                    logits[li] += 0.8
                    probs = np.exp(logits) / np.exp(logits).sum()
                    segments.append((track, s, start, start + length, emb.tolist(),
                                     {lg: float(p) for lg, p in zip(LANGUAGE_CLASSES, probs)}, "audio-test"))
                    start += length + 0.5
                status.append((track, STATUS_OK, None, 0.6, n_seg, 12.0, "audio-test"))
    return {
        "tracks": pd.DataFrame(tracks, columns=["track_id", "artist_id", "audio_uri", "duration_s"]),
        "labels": pd.DataFrame(labels, columns=["track_id", "language"]),
        "consumption": pd.DataFrame(consumption, columns=SCHEMAS["consumption"].fieldNames()),
        "timbral": pd.DataFrame(timbral, columns=SCHEMAS["timbral"].fieldNames()),
        "segments": pd.DataFrame(segments, columns=SCHEMAS["segments"].fieldNames()),
        "status": pd.DataFrame(status, columns=SCHEMAS["status"].fieldNames()),
    }


def feature_rows(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The track feature frame (pandas) built from a world without Spark, with language and artist."""
    cons = dict(zip(world["consumption"].track_id, world["consumption"].vector))
    timb = dict(zip(world["timbral"].track_id, world["timbral"].vector))
    segs = world["segments"].sort_values(["track_id", "seg_idx"]).groupby("track_id")
    emb = {t: list(g.embedding) for t, g in segs}
    dur = {t: list(g.end_s - g.start_s) for t, g in segs}
    lid = {t: list(g.spoken_lid_scores) for t, g in segs}
    rows = world["labels"].merge(world["tracks"][["track_id", "artist_id"]], on="track_id")
    rows["consumption"] = rows.track_id.map(cons)
    rows["timbral"] = rows.track_id.map(timb)
    rows["seg_embeddings"] = rows.track_id.map(lambda t: emb.get(t, []))
    rows["seg_durations"] = rows.track_id.map(lambda t: dur.get(t, []))
    rows["seg_spoken_lid"] = rows.track_id.map(lambda t: lid.get(t, []))
    rows["consumption"] = rows["consumption"].astype(object).where(rows["consumption"].notna(), None)
    rows["timbral"] = rows["timbral"].astype(object).where(rows["timbral"].notna(), None)
    return rows


# Inputs as DDL (the tests extend the tracks one); the feature tables as the stages write them
# (lid_spark.schemas), the planted status rows without audio_uri, extracted_at and audio_stat.
SCHEMAS = {
    "tracks": "track_id string, artist_id string, audio_uri string, duration_s double",
    "labels": "track_id string, language string",
    "consumption": EMBEDDINGS_SCHEMA,
    "timbral": TIMBRAL_FEATURES,
    "segments": VOCAL_SEGMENTS,
    "status": T.StructType([f for f in AUDIO_STATUS.fields
                            if f.name not in ("audio_uri", "extracted_at", "audio_stat")]),
}
