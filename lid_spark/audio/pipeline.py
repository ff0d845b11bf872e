"""Feature extraction for one track or a batch of tracks, without Spark.

decode -> vocal separation -> silence removal into vocal segments -> spoken-LID embedding per
segment; and the timbral codebook vector of the whole mixture. Every track gets a
:class:`TrackFeatures` with a status (see :mod:`lid_spark.audio.decode`); a bad file never stops
the batch.

The spoken-LID model is :class:`lid_spark.audio.spoken_lid.SpokenLID` (``embed`` and
``languages``); a ``scores`` function (its ``language_scores``) maps posteriors to a probability per
language code (the classes are chosen at training, from these). The segments of a whole batch of tracks are embedded
together, in batches of similar length: segment lengths are quantized by
``audio.segments.length_step_seconds`` so that many are exactly equal (padding changes ECAPA
embeddings).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lid_spark.audio.decode import AudioError, decode
from lid_spark.audio.segments import segments_from_config
from lid_spark.audio.separation import Separator
from lid_spark.audio.timbral import Codebook
from lid_spark.errors import ParameterError
from lid_spark.schemas import STATUS_FAILED, STATUS_NO_URI, STATUS_NO_VOCALS, STATUS_OK, STATUS_SILENT, STATUS_TRUNCATED

ScoresFn = Callable[[np.ndarray, Sequence[str]], dict[str, np.ndarray]]


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
    return analyse_tracks([uri], cfg, separator, codebook)[0]


@dataclass
class _Decoded:
    """A decoded track waiting for separation."""

    audio: object
    duration: float
    timings: dict[str, float]


def _decode_track(uri: str | None, cfg) -> _Decoded | TrackAnalysis:
    """The decoded track, or its finished analysis when it stops before separation (no URI, bad file, silent)."""
    timings: dict[str, float] = {}
    if uri is None or not str(uri).strip():
        return TrackAnalysis(TrackFeatures(STATUS_NO_URI, "the track has no audio_uri"))
    clock = time.perf_counter()
    try:
        audio = decode(uri, sample_rate=cfg.audio.sample_rate, max_seconds=cfg.audio.max_seconds,
                       audio_root=cfg.inputs.audio_root, block_seconds=cfg.audio.decode_block_seconds)
    except AudioError as e:
        return TrackAnalysis(TrackFeatures(e.status, e.message))
    timings["decode"] = time.perf_counter() - clock
    duration = audio.source_seconds if audio.source_seconds else audio.seconds
    if float(np.max(np.abs(audio.wave))) < cfg.audio.silence_peak:
        return TrackAnalysis(TrackFeatures(STATUS_SILENT, f"peak amplitude below {cfg.audio.silence_peak}",
                                           vocal_ratio=0.0, duration_s=duration, timings=timings))
    return _Decoded(audio, duration, timings)


def _separate_all(separator: Separator, decoded: list[_Decoded], sr: int) -> list[np.ndarray | Exception]:
    """Vocals of every decoded track (``Separator.separate_many``: batched across tracks where the
    backend can); a track the separator rejects gets its exception. The separation time is shared by
    the tracks in proportion to their length.
    """
    clock = time.perf_counter()
    results = separator.separate_many([d.audio.wave for d in decoded], sr)
    elapsed = time.perf_counter() - clock
    total = sum(d.audio.wave.size for d in decoded) or 1
    for d in decoded:
        d.timings["separation"] = elapsed * d.audio.wave.size / total
    return results


def analyse_tracks(uris: Sequence[str | None], cfg, separator: Separator | None,
                   codebook: Codebook | None) -> list[TrackAnalysis]:
    """:func:`analyse_track` for many tracks, their vocals separated together (``Separator.separate_many``).

    A track whose decoding or analysis raises an unexpected error gets status ``failed`` with the
    message; a separator that is gone for good (:class:`SeparationUnavailable`) stops the call.
    """
    out: list[TrackAnalysis | None] = [None] * len(uris)
    pending: list[tuple[int, _Decoded]] = []
    for i, uri in enumerate(uris):
        try:
            decoded = _decode_track(uri, cfg)
        except Exception as e:  # noqa: BLE001 - one bad track must not stop the batch; the message is kept
            out[i] = TrackAnalysis(TrackFeatures(STATUS_FAILED, f"{type(e).__name__}: {e}"))
            continue
        if isinstance(decoded, TrackAnalysis):
            out[i] = decoded
        else:
            pending.append((i, decoded))
    if pending:
        separated = _separate_all(separator, [d for _, d in pending], cfg.audio.sample_rate)
        for (i, decoded), vocals in zip(pending, separated):
            try:
                out[i] = _finish_track(decoded, vocals, cfg, codebook)
            except Exception as e:  # noqa: BLE001 - one bad track must not stop the batch; the message is kept
                out[i] = TrackAnalysis(TrackFeatures(STATUS_FAILED, f"{type(e).__name__}: {e}"))
    return out


def _finish_track(decoded: _Decoded, vocals, cfg, codebook: Codebook | None) -> TrackAnalysis:
    """Segments, timbre and status of a separated track."""
    audio, duration, timings = decoded.audio, decoded.duration, decoded.timings
    sr = cfg.audio.sample_rate
    if isinstance(vocals, AudioError):
        return TrackAnalysis(TrackFeatures(vocals.status, vocals.message, duration_s=duration, timings=timings))
    if isinstance(vocals, Exception):
        raise vocals
    clock = time.perf_counter()
    found = segments_from_config(vocals, sr, cfg, mixture=audio.wave)
    timings["segmentation"] = time.perf_counter() - clock
    timbral = None
    if codebook is not None:
        clock = time.perf_counter()
        timbral = codebook.encode(audio.wave, sr)
        timings["timbral"] = time.perf_counter() - clock

    if len(found) == 0:
        status, error = STATUS_NO_VOCALS, "no vocal segment passed the silence threshold"
    elif audio.damage is not None:
        status = STATUS_TRUNCATED
        error = (f"the file is damaged after {audio.seconds:.1f} s of {duration:.1f} s; the part before was "
                 f"analysed ({audio.damage})")
    elif audio.truncated:
        status = STATUS_TRUNCATED
        error = f"only the first {audio.seconds:.0f} s of {duration:.0f} s were analysed (audio.max_seconds)"
    else:
        status, error = STATUS_OK, None
    segments = [SegmentFeatures(i, float(a / sr), float(b / sr)) for i, (a, b) in enumerate(found.intervals)]
    waves = embedded_segments(vocals, audio.wave, found.intervals, cfg.audio.segments.mix_share)
    features = TrackFeatures(status, error, found.vocal_ratio, duration, segments, timbral, timings)
    return TrackAnalysis(features, waves)


def embedded_segments(vocals: np.ndarray, mixture: np.ndarray, intervals, mix_share: float) -> list[np.ndarray]:
    """The audio the spoken-LID model embeds for each segment: ``(1 - mix_share) * vocals + mix_share * mixture``.

    Adding some of the observed mixture back to a separator's output ("observation adding") trades
    leaked accompaniment for fewer masking artefacts, which cost a recogniser more (docs/audio.md
    measures it for the pretrained separator). ``mix_share`` 0 embeds the separated vocals alone.

    Example
    -------
    >>> embedded_segments(np.ones(4, np.float32), np.zeros(4, np.float32), [(0, 2)], 0.25)[0].tolist()
    [0.75, 0.75]
    """
    if not 0.0 <= mix_share <= 1.0:
        raise ParameterError(f"audio.segments.mix_share must be in [0, 1], got {mix_share}")
    if mix_share == 0.0:
        return [vocals[a:b] for a, b in intervals]
    return [((1.0 - mix_share) * vocals[a:b] + mix_share * mixture[a:b]).astype(np.float32) for a, b in intervals]


def embed_segments(spoken_lid, waves: Sequence[np.ndarray], batch_size: int = 16, bucket_ratio: float = 1.0,
                   scores: ScoresFn | None = None) -> tuple[list[np.ndarray], list[dict[str, float] | None]]:
    """Embed segment waves; returns per-segment embeddings and language scores in input order.

    Parameters
    ----------
    spoken_lid : SpokenLID or alike
        ``embed(waves, batch_size=, bucket_ratio=) -> (embeddings [n, D], posteriors [n, L])`` and
        ``languages`` (the L labels of the posteriors).
    waves : sequence of np.ndarray
        Mono 16 kHz segments.
    batch_size : int
        Segments per forward pass.
    bucket_ratio : float
        Longest / shortest segment within a batch; with lengths quantized by
        ``audio.segments.length_step_seconds`` and a ratio of 1, batches need no padding.
    scores : callable, optional
        ``scores(posteriors [n, L], languages) -> {class: array [n]}``
        (:func:`lid_spark.audio.spoken_lid.language_scores`); None: no scores.
    """
    if batch_size < 1:
        raise ParameterError(f"audio.spoken_lid.batch_size must be positive, got {batch_size}")
    if not waves:
        return [], []
    emb, post = spoken_lid.embed([np.asarray(w, dtype=np.float32) for w in waves], batch_size=batch_size,
                                 bucket_ratio=bucket_ratio)
    embeddings = list(np.asarray(emb, dtype=np.float32))
    if scores is None:
        return embeddings, [None] * len(waves)
    by_class = scores(np.asarray(post), spoken_lid.languages)
    rows = [{cls: float(values[i]) for cls, values in by_class.items()} for i in range(len(waves))]
    return embeddings, rows


def extract_tracks(uris: Sequence[str | None], cfg, separator: Separator | None, codebook: Codebook | None,
                   spoken_lid, scores: ScoresFn | None = None) -> list[TrackFeatures]:
    """:func:`extract_track` for many tracks, embedding their segments together in equal-length batches.

    A track whose analysis raises an unexpected error gets status ``failed`` with the message; the
    others go on. A separator that is gone for good (:class:`SeparationUnavailable`) stops the call:
    marking every remaining track failed would hide the cause. The embedding step is shared, so its
    failure fails the call.
    """
    analyses = analyse_tracks(uris, cfg, separator, codebook)
    waves = [wave for analysis in analyses for wave in analysis.segment_waves]
    if waves and spoken_lid is not None:
        clock = time.perf_counter()
        conf = cfg.audio.spoken_lid
        embeddings, language_scores = embed_segments(spoken_lid, waves, conf.batch_size, conf.bucket_ratio, scores)
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


# Settings that change what extraction produces; the rest (batching, devices, threads) do not.
_VERSIONED_KEYS = ("sample_rate", "max_seconds", "silence_peak", "separation", "segments")


def feature_version(cfg, codebook: Codebook | None, spoken_lid_tag: str) -> str:
    """The version stamped on every extracted row: configured name + what the features depend on.

    It is ``<audio.feature_version>-<hash>``, where the hash covers the extraction settings
    (rate, length cap, separation, segmentation), the codebook's checksum and the spoken-LID
    model's tag: changing any of them makes ``extract_features`` redo the tracks.

    Example
    -------
    >>> from lid_spark.config import load_config
    >>> cfg = load_config()
    >>> feature_version(cfg, None, "m1") == feature_version(
    ...     cfg.with_overrides(["audio.udf.tracks_per_batch=2"]), None, "m1")
    True
    >>> feature_version(cfg, None, "m1") == feature_version(
    ...     cfg.with_overrides(["audio.segments.top_db=20"]), None, "m1")
    False
    """
    import hashlib
    import json

    audio = cfg.audio.to_dict()
    settings = {key: audio[key] for key in _VERSIONED_KEYS}
    settings["codebook"] = codebook.checksum if codebook is not None else None
    settings["spoken_lid"] = spoken_lid_tag
    # spoken_lid_scores hold a probability per language code of the model (not per class).
    settings["spoken_lid_scores"] = "per-language"
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{cfg.audio.feature_version}-{digest}"


def spoken_lid_tag(source: str) -> str:
    """A short identity of the spoken-LID model ``audio.spoken_lid.source`` for :func:`feature_version`.

    The embedded model and local directories are identified by their files' checksums (so a
    retrained model re-extracts), a hub id by itself.
    """
    import hashlib
    from pathlib import Path

    from lid_spark.audio.spoken_lid import CHECKSUMS_FILE, EMBEDDED_MODEL_DIR

    directory = EMBEDDED_MODEL_DIR if source == "embedded" else Path(source).expanduser()
    if not directory.is_dir():
        return source
    listing = directory / CHECKSUMS_FILE
    files = [listing] if listing.is_file() else sorted(p for p in directory.iterdir() if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{'embedded' if source == 'embedded' else 'dir'}@{digest.hexdigest()[:12]}"
