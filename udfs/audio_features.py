"""Iterator pandas UDFs (``mapInPandas``) over tracks: feature extraction and codebook-fit sampling.

Models load once per Python worker through :func:`lid_spark.udfs.worker.worker_model` (a cache
keyed by their settings), not per batch. When Spark gives the task a GPU
(``spark.task.resource.gpu.amount``), ``CUDA_VISIBLE_DEVICES`` is pinned to it before torch starts
CUDA, so every framework in the worker sees only that GPU; otherwise the models run on CPU with
``audio.udf.torch_threads`` threads.

:func:`extract_features_udf` returns flat rows of two kinds (:data:`lid_spark.schemas.EXTRACT_SCHEMA`),
which the ``extract_features`` stage splits into the ``audio_status``, ``timbral_features`` and
``vocal_segments`` tables: one ``track`` row per input track (always, whatever happened to it) and
one ``segment`` row per vocal segment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from lid_spark.udfs.worker import pin_task_gpu, worker_model

from lid_spark.config import Config
from lid_spark.schemas import EXTRACT_SCHEMA, MEL_SCHEMA, SEGMENT, STATUS_OK, TRACK, is_missing

ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


@contextmanager
def arrow_batch_rows(spark, rows: int):
    """Run the enclosed Spark actions with ``rows`` rows (tracks) per pandas batch, then restore the setting.

    The session may be shared (a notebook), so the previous value is put back.
    """
    previous = spark.conf.get(ARROW_BATCH, None)
    spark.conf.set(ARROW_BATCH, str(rows))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(ARROW_BATCH)
        else:
            spark.conf.set(ARROW_BATCH, previous)


# Fault injection for the reliability tests: when this variable names a file path that does not
# exist yet, the first Python worker to reach the hook creates the file and kills itself (SIGKILL),
# as a worker lost to the OOM killer or a dead executor would be. The file makes it happen once
# per run, whatever the number of workers. It fires before a task's second batch, so the task has
# already returned rows that Spark must discard when it retries the task.
FAULT_KILL_WORKER_ONCE = "LID_SPARK_TEST_FAULT_KILL_WORKER_ONCE"


# The same, but the first worker kills the executor JVM that started it (found among its parent
# processes; Linux /proc): a lost executor. Only meaningful under a master with separate executor
# processes (local-cluster[...] or a cluster); in local[...] the executor is the driver.
FAULT_KILL_EXECUTOR_ONCE = "LID_SPARK_TEST_FAULT_KILL_EXECUTOR_ONCE"


def _fault_kill_worker_once() -> None:
    for variable, victim in ((FAULT_KILL_WORKER_ONCE, lambda: os.getpid()),
                             (FAULT_KILL_EXECUTOR_ONCE, _executor_jvm_pid)):
        marker = os.environ.get(variable)
        if not marker:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        pid = victim()
        os.write(fd, str(pid).encode())
        os.close(fd)
        import signal

        os.kill(pid, signal.SIGKILL)


def _executor_jvm_pid() -> int:
    """The nearest parent process running CoarseGrainedExecutorBackend (this worker's executor)."""
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"CoarseGrainedExecutorBackend" in f.read():
                return pid
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no executor JVM among the parents of this Python worker (a local[...] master?)")


def audio_stat_udf(audio_root: str | None):
    """The ``mapInPandas`` function ``tracks(track_id, audio_uri)`` -> :data:`STAT_SCHEMA` rows (no model)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lid_spark.audio.decode import audio_stat

        for batch in batches:
            stats = [audio_stat(None if is_missing(u) else str(u), audio_root) for u in batch["audio_uri"]]
            yield pd.DataFrame({"track_id": batch["track_id"], "audio_stat": pd.Series(stats, dtype=object)})

    return run


def _worker_models(cfg: Config):
    """(separator, spoken-LID model) for this worker, loaded on first use, each on its configured device
    (``auto``: the task's GPU when Spark gives one, else the CPU)."""
    settings = cfg.audio

    def load(device: str):
        from lid_spark.audio.separation import separator_from_config
        from lid_spark.audio.spoken_lid import SpokenLID

        spoken_lid = SpokenLID.load(settings.spoken_lid.source, device=device, savedir=settings.spoken_lid.savedir)
        separation_device = pin_task_gpu(settings.separation.device)
        return separator_from_config(cfg, device=separation_device), spoken_lid

    return worker_model("audio", (settings.separation.to_dict(), settings.spoken_lid.to_dict()), load,
                        device=settings.spoken_lid.device, torch_threads=settings.udf.torch_threads)


def extract_features_udf(cfg_data: dict, codebook, version: str):
    """The ``mapInPandas`` function for ``tracks(track_id, audio_uri)`` -> :data:`EXTRACT_SCHEMA` rows.

    Parameters
    ----------
    cfg_data : dict
        ``Config.to_dict()`` of the job (a plain dict travels to the workers).
    codebook : Codebook
        The fitted timbral codebook (small: it travels inside the function).
    version : str
        ``feature_version`` stamped by the job on the rows.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lid_spark.audio.pipeline import extract_tracks
        from lid_spark.audio.spoken_lid import language_scores

        cfg = Config(cfg_data)
        separator, spoken_lid = _worker_models(cfg)
        for index, batch in enumerate(batches):
            if index:  # mid-task: after this task already returned rows for a batch
                _fault_kill_worker_once()
            uris = [None if is_missing(u) else str(u) for u in batch["audio_uri"]]
            tracks = extract_tracks(uris, cfg, separator, codebook, spoken_lid, scores=language_scores)
            yield _rows(batch["track_id"].tolist(), uris, tracks)

    return run


def _rows(track_ids: list[str], uris: list[str | None], tracks) -> pd.DataFrame:
    rows = []
    for track_id, uri, features in zip(track_ids, uris, tracks):
        rows.append({"kind": TRACK, "track_id": track_id, "audio_uri": uri, "status": features.status,
                     "error": features.error, "vocal_ratio": features.vocal_ratio,
                     "duration_s": features.duration_s, "n_segments": len(features.segments),
                     "timbral": None if features.timbral is None else features.timbral.astype(np.float32).tolist()})
        for segment in features.segments:
            rows.append({"kind": SEGMENT, "track_id": track_id, "seg_idx": segment.seg_idx,
                         "start_s": segment.start_s, "end_s": segment.end_s,
                         "embedding": None if segment.embedding is None else segment.embedding.tolist(),
                         "spoken_lid_scores": segment.spoken_lid_scores})
    # Object columns keep None as null (a plain frame would turn missing lists and ints into NaN).
    return pd.DataFrame({name: pd.Series([row.get(name) for row in rows], dtype=object)
                         for name in EXTRACT_SCHEMA.fieldNames()})


def mel_sample_udf(cfg_data: dict):
    """The ``mapInPandas`` function for the codebook fit: ``tracks`` -> :data:`MEL_SCHEMA` rows.

    Each track is decoded and turned into log-mel frames, of which ``audio.timbral.fit_frames_per_track``
    are kept as short contiguous runs spread over the whole track (deltas need neighbouring frames).
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from lid_spark.audio.decode import AudioError, decode
        from lid_spark.audio.timbral import log_mel, sample_frames

        cfg = Config(cfg_data)
        conf = cfg.audio.timbral
        for batch in batches:
            rows = []
            for track_id, uri in zip(batch["track_id"], batch["audio_uri"]):
                try:
                    audio = decode(uri, sample_rate=cfg.audio.sample_rate, max_seconds=cfg.audio.max_seconds,
                                   audio_root=cfg.inputs.audio_root, block_seconds=cfg.audio.decode_block_seconds)
                except AudioError as e:
                    rows.append({"track_id": track_id, "status": e.status, "error": e.message, "n_frames": 0,
                                 "mel": None})
                    continue
                mel = sample_frames(log_mel(audio.wave, audio.sample_rate, conf.n_mels, conf.window_seconds),
                                    conf.fit_frames_per_track)
                rows.append({"track_id": track_id, "status": STATUS_OK, "error": None, "n_frames": len(mel),
                             "mel": mel.ravel().tolist()})
            yield pd.DataFrame({name: pd.Series([row[name] for row in rows], dtype=object)
                                for name in MEL_SCHEMA.fieldNames()})

    return run
