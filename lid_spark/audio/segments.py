"""Silence removal on the separated vocals: contiguous vocal segments and the vocal ratio of a track.

A frame is *voiced* when its RMS level is within ``top_db`` of the loudest frame of the track and
above an absolute floor ``floor_db`` (dBFS), so a quiet instrumental residue is not called singing
just because nothing louder is there, and (given the mixture) when the vocals hold a share of the
frame's level of at least ``min_share_db``, so the separator's leftovers of the accompaniment are
not called singing either. Silences shorter than ``min_silence_seconds`` (between words)
do not split a run. Voiced runs shorter than ``min_seconds`` are dropped, longer
than ``max_seconds`` are split into pieces of ``max_seconds``; each segment's length is cut down to
a multiple of ``length_step_seconds`` so segments batch for the embedder in groups of exactly equal
length (padding changes ECAPA embeddings). When a track has more than ``max_per_track`` segments,
a subset spread evenly over the whole track is kept (not the first ones).

Example
-------
>>> import numpy as np
>>> sr = 16000
>>> wave = np.zeros(10 * sr, dtype="float32")
>>> wave[2 * sr:5 * sr] = 0.5 * np.sin(np.arange(3 * sr) / 5)
>>> segs = vocal_segments(wave, sr, top_db=30, min_seconds=1.0, max_seconds=4.0, max_per_track=8,
...                       length_step_seconds=0.5)
>>> (segs.intervals / sr).round(2)
array([[1.98, 4.98]])
>>> round(segs.vocal_ratio, 1)
0.3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lid_spark.errors import ParameterError


@dataclass(frozen=True)
class VocalSegments:
    """Segments of a track as ``intervals`` (n, 2) of [start, end) samples, and its vocal ratio."""

    intervals: np.ndarray
    vocal_ratio: float
    voiced_seconds: float

    def __len__(self) -> int:
        return len(self.intervals)


def voiced_intervals(wave: np.ndarray, sr: int, top_db: float = 30.0, floor_db: float | None = -55.0,
                     min_silence_seconds: float = 0.0, mixture: np.ndarray | None = None,
                     min_share_db: float | None = None, frame_seconds: float = 0.064) -> np.ndarray:
    """Runs of voiced frames as (n, 2) [start, end) sample indices.

    Parameters
    ----------
    wave : np.ndarray
        Mono audio (the separated vocals).
    sr : int
        Sample rate.
    top_db : float
        Frames more than this many dB below the loudest frame are silence
        (as ``librosa.effects.split``).
    floor_db : float or None
        Frames below this absolute RMS level in dBFS are silence; None disables the floor.
    min_silence_seconds : float
        Silences shorter than this (the gaps between words) do not end a run.
    mixture : np.ndarray or None
        The mixture ``wave`` was separated from (same length), for ``min_share_db``.
    min_share_db : float or None
        Frames where the vocals are more than this many dB below the mixture are silence: a
        separator's residue of the accompaniment is not singing. None disables the test.
    frame_seconds : float
        Analysis frame length (hop is half of it).

    Returns
    -------
    np.ndarray of int64, shape (n, 2)
    """
    if top_db <= 0:
        raise ParameterError(f"audio.segments.top_db must be positive, got {top_db}")
    wave = np.asarray(wave, dtype=np.float32)
    frame = max(16, int(frame_seconds * sr))
    hop = frame // 2
    if len(wave) < frame or not np.any(wave):
        return np.zeros((0, 2), dtype=np.int64)
    import librosa

    def frame_db(x):
        rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=True)[0]
        return librosa.amplitude_to_db(rms, ref=1.0, amin=1e-10, top_db=None)

    level = frame_db(wave)
    threshold = level.max() - top_db
    if floor_db is not None:
        threshold = max(threshold, floor_db)
    voiced = level > threshold
    if min_share_db is not None:
        if mixture is None or len(mixture) != len(wave):
            raise ParameterError("min_share_db needs the mixture, of the same length as the vocals")
        voiced &= level - frame_db(np.asarray(mixture, dtype=np.float32)) >= min_share_db
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    if min_silence_seconds < 0:
        raise ParameterError(f"audio.segments.min_silence_seconds must be >= 0, got {min_silence_seconds}")
    if len(starts) > 1 and min_silence_seconds > 0:
        keep = (starts[1:] - ends[:-1]) * hop >= min_silence_seconds * sr  # gaps long enough to split at
        starts = np.concatenate([starts[:1], starts[1:][keep]])
        ends = np.concatenate([ends[:-1][keep], ends[-1:]])
    intervals = np.stack([starts * hop, np.minimum(ends * hop, len(wave))], axis=1).astype(np.int64)
    return intervals[intervals[:, 1] > intervals[:, 0]]


def split_intervals(intervals: np.ndarray, sr: int, min_seconds: float, max_seconds: float,
                    length_step_seconds: float = 0.0) -> np.ndarray:
    """Drop intervals shorter than ``min_seconds``, split longer than ``max_seconds``, quantize lengths.

    A long interval is cut into pieces of ``max_seconds``; its remainder is kept as a last piece
    when it is at least ``min_seconds`` long. Each piece's end is then moved back so its length is
    a multiple of ``length_step_seconds`` (0: lengths are kept as they are).

    Example
    -------
    >>> split_intervals(np.array([[0, 10], [20, 23]]), sr=1, min_seconds=1, max_seconds=4)
    array([[ 0,  4],
           [ 4,  8],
           [ 8, 10],
           [20, 23]])
    >>> split_intervals(np.array([[0, 11]]), sr=1, min_seconds=2, max_seconds=5, length_step_seconds=2)
    array([[0, 4],
           [5, 9]])
    """
    if not 0 < min_seconds <= max_seconds:
        raise ParameterError(f"audio.segments needs 0 < min_seconds <= max_seconds, got {min_seconds}, "
                             f"{max_seconds}")
    if length_step_seconds < 0 or length_step_seconds > min_seconds:
        raise ParameterError(f"audio.segments.length_step_seconds must be in [0, min_seconds], got "
                             f"{length_step_seconds}")
    min_len, max_len = int(round(min_seconds * sr)), int(round(max_seconds * sr))
    step = int(round(length_step_seconds * sr))
    pieces = []
    for start, end in np.asarray(intervals, dtype=np.int64).reshape(-1, 2):
        for piece_start in range(int(start), int(end), max_len):
            piece_end = min(piece_start + max_len, int(end))
            length = piece_end - piece_start
            if step:
                length -= length % step
            if length >= min_len:
                pieces.append((piece_start, piece_start + length))
    return np.array(pieces, dtype=np.int64).reshape(-1, 2)


def spread_evenly(n: int, k: int) -> np.ndarray:
    """Indices of ``k`` of ``n`` items spread evenly from first to last (all of them when n <= k).

    Example
    -------
    >>> spread_evenly(10, 4)
    array([0, 3, 6, 9])
    """
    if k <= 0:
        raise ParameterError(f"audio.segments.max_per_track must be positive, got {k}")
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def vocal_segments(vocals: np.ndarray, sr: int, top_db: float = 30.0, min_seconds: float = 1.0,
                   max_seconds: float = 4.0, max_per_track: int = 8, floor_db: float | None = -55.0,
                   length_step_seconds: float = 0.0, min_silence_seconds: float = 0.0,
                   mixture: np.ndarray | None = None, min_share_db: float | None = None) -> VocalSegments:
    """Vocal segments of a track from its separated vocals (see the module doc for the rules).

    Returns
    -------
    VocalSegments
        ``intervals`` in samples, sorted by start; ``vocal_ratio`` = voiced seconds (all voiced
        frames, before the length rules) / track seconds.
    """
    vocals = np.asarray(vocals, dtype=np.float32)
    voiced = voiced_intervals(vocals, sr, top_db=top_db, floor_db=floor_db, min_silence_seconds=min_silence_seconds,
                              mixture=mixture, min_share_db=min_share_db)
    voiced_samples = int((voiced[:, 1] - voiced[:, 0]).sum()) if len(voiced) else 0
    pieces = split_intervals(voiced, sr, min_seconds, max_seconds, length_step_seconds)
    pieces = pieces[spread_evenly(len(pieces), max_per_track)] if len(pieces) else pieces
    ratio = voiced_samples / len(vocals) if len(vocals) else 0.0
    return VocalSegments(pieces, float(ratio), voiced_samples / sr)


def segments_from_config(vocals: np.ndarray, sr: int, cfg, mixture: np.ndarray | None = None) -> VocalSegments:
    """:func:`vocal_segments` with the parameters under ``audio.segments`` of a Config."""
    conf = cfg.audio.segments
    return vocal_segments(vocals, sr, top_db=conf.top_db, min_seconds=conf.min_seconds,
                          max_seconds=conf.max_seconds, max_per_track=conf.max_per_track,
                          floor_db=conf.floor_db, length_step_seconds=conf.length_step_seconds,
                          min_silence_seconds=conf.min_silence_seconds, mixture=mixture,
                          min_share_db=conf.min_share_db if mixture is not None else None)
