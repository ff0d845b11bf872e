"""Feature extraction for one track or a batch of tracks, without Spark.

decode -> vocal separation -> silence removal into vocal segments -> spoken-LID embedding per
segment; and the timbral codebook vector of the whole mixture. Every track gets a
:class:`TrackFeatures` with a status (see :mod:`lid_spark.audio.decode`); a bad file never stops
the batch.

The spoken-LID model is anything with ``embed(waves) -> (embeddings [n, D], posteriors [n, L])``
and ``languages`` (:class:`lid_spark.audio.spoken_lid.SpokenLID`); a ``scores`` function maps
its posteriors to ``{language class: probability}`` over :data:`lid_spark.LANGUAGE_CLASSES`.
Segments are embedded in batches of *equal* length (segment lengths are quantized by
``audio.segments.length_step_seconds``), because padding changes ECAPA embeddings.

Example
-------
>>> from lid_spark.config import load_config
>>> cfg = load_config()
>>> features = extract_track("no/such/file.flac", cfg, separator=None, codebook=None, spoken_lid=None)
>>> features.status
'missing_file'
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lid_spark.audio.decode import (STATUS_FAILED, STATUS_NO_URI, STATUS_NO_VOCALS, STATUS_OK, STATUS_SILENT,
                                    STATUS_TRUNCATED, AudioError, decode)
from lid_spark.audio.segments import segments_from_config
from lid_spark.audio.separation import Separator
from lid_spark.audio.timbral import Codebook
from lid_spark.errors import ParameterError

ScoresFn = Callable[[np.ndarray, Sequence[str]], list[dict[str, float]]]


@dataclass
class SegmentFeatures:
    """One vocal segment: its place in the track, spoken-LID embedding and language scores."""

    seg_idx: int
    start_s: float
    end_s: float
    embedding: np.ndarray | None = None
    spoken_lid_scores: dict[str, float] | None = None


@dataclass
class TrackFeatures:
    """Everything extracted from one track; ``status`` says how far it got."""

    status: str
    error: str | None = None
    vocal_ratio: float | None = None
    duration_s: float | None = None
    segments: list[SegmentFeatures] = field(default_factory=list)
    timbral: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage, for benchmarks


@dataclass
class TrackAnalysis:
    """A track after every stage but the embedding, with the segment waves still to embed."""

    features: TrackFeatures
    segment_waves: list[np.ndarray] = field(default_factory=list)


def analyse_track(uri: str | None, cfg, separator: Separator | None, codebook: Codebook | None) -> TrackAnalysis:
    """Decode, separate, segment and encode timbre for one track (all but the embedding).

    Parameters
    ----------
    uri : str or None
        The track's ``audio_uri``.
    cfg : Config
        Reads ``audio.*`` and ``inputs.audio_root``.
    separator : Separator
        Vocal separation backend (:func:`lid_spark.audio.separation.separator_from_config`).
    codebook : Codebook or None
        Timbral codebook; None skips the timbral vector.

    Returns
    -------
    TrackAnalysis
    """
    timings: dict[str, float] = {}
    if uri is None or not str(uri).strip():
        return TrackAnalysis(TrackFeatures(STATUS_NO_URI, "the track has no audio_uri"))
    sr = cfg.audio.sample_rate
    clock = time.perf_counter()
    try:
        audio = decode(uri, sample_rate=sr, max_seconds=cfg.audio.max_seconds, audio_root=cfg.inputs.audio_root,
                       block_seconds=cfg.audio.decode_block_seconds)
    except AudioError as e:
        return TrackAnalysis(TrackFeatures(e.status, e.message))
    timings["decode"] = time.perf_counter() - clock
    duration = audio.source_seconds if audio.source_seconds else audio.seconds
    if float(np.max(np.abs(audio.wave))) < cfg.audio.silence_peak:
        return TrackAnalysis(TrackFeatures(STATUS_SILENT, f"peak amplitude below {cfg.audio.silence_peak}",
                                           vocal_ratio=0.0, duration_s=duration, timings=timings))

    clock = time.perf_counter()
    vocals = separator.separate(audio.wave, sr)
    timings["separation"] = time.perf_counter() - clock
    clock = time.perf_counter()
    found = segments_from_config(vocals, sr, cfg)
    timings["segmentation"] = time.perf_counter() - clock
    timbral = None
    if codebook is not None:
        clock = time.perf_counter()
        timbral = codebook.encode(audio.wave, sr)
        timings["timbral"] = time.perf_counter() - clock

    if len(found) == 0:
        status, error = STATUS_NO_VOCALS, "no vocal segment passed the silence threshold"
    elif audio.truncated:
        status = STATUS_TRUNCATED
        error = f"only the first {audio.seconds:.0f} s of {duration:.0f} s were analysed (audio.max_seconds)"
    else:
        status, error = STATUS_OK, None
    segments = [SegmentFeatures(i, float(a / sr), float(b / sr)) for i, (a, b) in enumerate(found.intervals)]
    waves = [vocals[a:b] for a, b in found.intervals]
    features = TrackFeatures(status, error, found.vocal_ratio, duration, segments, timbral, timings)
    return TrackAnalysis(features, waves)


def embed_segments(spoken_lid, waves: Sequence[np.ndarray], batch_size: int = 16,
                   scores: ScoresFn | None = None) -> tuple[list[np.ndarray], list[dict[str, float] | None]]:
    """Embed segment waves in batches of equal length; returns embeddings and language scores in input order.

    Parameters
    ----------
    spoken_lid : object with ``embed(list of 1-D arrays) -> (embeddings [n, D], posteriors [n, L])``
        and ``languages`` (the L labels of the posteriors).
    waves : sequence of np.ndarray
        Mono 16 kHz segments.
    batch_size : int
        Segments per forward pass.
    scores : callable, optional
        ``scores(posteriors [n, L], languages) -> list of {class: probability}``; None: no scores.
    """
    if batch_size < 1:
        raise ParameterError(f"audio.spoken_lid.batch_size must be positive, got {batch_size}")
    embeddings: list[np.ndarray | None] = [None] * len(waves)
    language_scores: list[dict[str, float] | None] = [None] * len(waves)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, wave in enumerate(waves):
        by_length[len(wave)].append(i)
    for length in sorted(by_length):
        indices = by_length[length]
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            emb, post = spoken_lid.embed([np.asarray(waves[i], dtype=np.float32) for i in chunk])
            emb, post = np.asarray(emb, dtype=np.float32), np.asarray(post, dtype=np.float32)
            chunk_scores = scores(post, spoken_lid.languages) if scores is not None else [None] * len(chunk)
            for j, i in enumerate(chunk):
                embeddings[i] = emb[j]
                language_scores[i] = chunk_scores[j]
    return embeddings, language_scores


def extract_tracks(uris: Sequence[str | None], cfg, separator: Separator | None, codebook: Codebook | None,
                   spoken_lid, scores: ScoresFn | None = None) -> list[TrackFeatures]:
    """:func:`extract_track` for many tracks, embedding their segments together in equal-length batches.

    A track whose analysis raises an unexpected error gets status ``failed`` with the message; the
    others go on. The embedding step is shared, so its failure fails the call.
    """
    analyses = []
    for uri in uris:
        try:
            analyses.append(analyse_track(uri, cfg, separator, codebook))
        except Exception as e:  # noqa: BLE001 - one bad track must not stop the batch; the message is kept
            analyses.append(TrackAnalysis(TrackFeatures(STATUS_FAILED, f"{type(e).__name__}: {e}")))
    waves = [wave for analysis in analyses for wave in analysis.segment_waves]
    if waves and spoken_lid is not None:
        clock = time.perf_counter()
        embeddings, language_scores = embed_segments(spoken_lid, waves, cfg.audio.spoken_lid.batch_size, scores)
        elapsed = time.perf_counter() - clock
        k = 0
        for analysis in analyses:
            n = len(analysis.segment_waves)
            share = sum(len(w) for w in analysis.segment_waves) / sum(len(w) for w in waves)
            analysis.features.timings["embedding"] = elapsed * share
            for segment, embedding, language in zip(analysis.features.segments, embeddings[k:k + n],
                                                    language_scores[k:k + n]):
                segment.embedding, segment.spoken_lid_scores = embedding, language
            k += n
    return [analysis.features for analysis in analyses]


def extract_track(uri: str | None, cfg, separator: Separator | None, codebook: Codebook | None, spoken_lid,
                  scores: ScoresFn | None = None) -> TrackFeatures:
    """All features of one track: status, vocal ratio, segments with embeddings and scores, timbral vector.

    Parameters
    ----------
    uri : str or None
        The track's ``audio_uri``.
    cfg : Config
        Reads ``audio.*`` and ``inputs.audio_root``.
    separator : Separator
        Vocal separation backend.
    codebook : Codebook or None
        Timbral codebook; None skips the timbral vector.
    spoken_lid : SpokenLID or None
        Segment embedder; None leaves embeddings empty.
    scores : callable, optional
        Maps spoken-LID posteriors to target-language scores.

    Returns
    -------
    TrackFeatures
    """
    return extract_tracks([uri], cfg, separator, codebook, spoken_lid, scores)[0]
