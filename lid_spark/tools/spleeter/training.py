"""Train a Spleeter 2-stem model with Spleeter's own training code (``spleeter train``) on true stems.

The paper uses Deezer's released ``spleeter:2stems`` model. Where it is not available (an air-gapped
cluster, our tests), this module trains one the same way Deezer did, only smaller: it writes a Spleeter
training set (16-bit WAV mixture/vocals/accompaniment per track plus ``train.csv``/``validation.csv``),
a reduced Spleeter JSON configuration (smaller U-Net, shorter frames), runs ``python -m spleeter train``
in the Spleeter environment, and leaves a model directory in Spleeter's MODEL_PATH layout
(checkpoint + ``.probe``) that :class:`~lid_spark.audio.separation.spleeter_process.SpleeterSeparator` loads with
``params=<model_dir>/params.json``.

Audio I/O during training goes through ``spleeter_worker.WaveAudioAdapter`` (standard-library WAV
reader), so no ffmpeg binary is needed.

Example
-------
>>> config = training_config("/tmp/m/tiny", "/tmp/d/train.csv", "/tmp/d/validation.csv", steps=10)
>>> config["model"]["type"], config["instrument_list"]
('unet.unet', ['vocals', 'accompaniment'])
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lid_spark.audio.separation.spleeter_process import WORKER_SCRIPT, resolve_env_python
from lid_spark.errors import InputError, ParameterError

ADAPTER = "spleeter_worker.WaveAudioAdapter"
CSV_COLUMNS = ("mix_path", "vocals_path", "accompaniment_path", "duration")


def write_training_set(stems: Iterable[tuple[str, np.ndarray, np.ndarray]], out_dir: str | os.PathLike,
                       sample_rate: int, validation_every: int = 5) -> dict:
    """Write Spleeter's training layout from true stems.

    Parameters
    ----------
    stems : iterable of (track_id, vocals, accompaniment)
        Mono float arrays of one length at ``sample_rate``.
    out_dir : path
        Receives ``audio/<track_id>/{mix,vocals,accompaniment}.wav``, ``train.csv`` and ``validation.csv``.
    sample_rate : int
        Sample rate of the stems (and of the model to train).
    validation_every : int
        Every n-th track goes to the validation set (at least one track does).

    Returns
    -------
    dict with ``train_csv``, ``validation_csv`` (paths), ``n_train``, ``n_validation``, ``seconds``.

    Raises
    ------
    InputError
        When a pair of stems differs in length, or there are fewer than 2 tracks.
    """
    import soundfile as sf

    if validation_every < 2:
        raise ParameterError(f"validation_every must be >= 2, got {validation_every}")
    out = Path(out_dir)
    rows: dict[str, list[str]] = {"train": [], "validation": []}
    seconds = 0.0
    for i, (track_id, vocals, accompaniment) in enumerate(stems):
        vocals = np.asarray(vocals, dtype=np.float32)
        accompaniment = np.asarray(accompaniment, dtype=np.float32)
        if vocals.shape != accompaniment.shape or vocals.ndim != 1:
            raise InputError(f"stems of {track_id} must be mono and of one length, got {vocals.shape} and "
                             f"{accompaniment.shape}")
        mix = vocals + accompaniment
        # One gain for all three files keeps mix == vocals + accompaniment while avoiding clipping.
        gain = min(1.0, 0.98 / max(float(np.abs(mix).max(initial=0.0)), 1e-9))
        folder = out / "audio" / str(track_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, wave in (("mix", mix), ("vocals", vocals), ("accompaniment", accompaniment)):
            sf.write(folder / f"{name}.wav", gain * wave, sample_rate, subtype="PCM_16")
        duration = len(mix) / sample_rate
        seconds += duration
        split = "validation" if i % validation_every == validation_every - 1 else "train"
        rel = f"audio/{track_id}"
        rows[split].append(f"{rel}/mix.wav,{rel}/vocals.wav,{rel}/accompaniment.wav,{duration:.6f}")
    if not rows["validation"] and len(rows["train"]) > 1:
        rows["validation"].append(rows["train"].pop())
    if not rows["train"] or not rows["validation"]:
        raise InputError(f"a Spleeter training set needs at least 2 tracks with stems, got "
                         f"{len(rows['train']) + len(rows['validation'])}")
    paths = {}
    for split, lines in rows.items():
        paths[split] = out / f"{split}.csv"
        paths[split].write_text(",".join(CSV_COLUMNS) + "\n" + "\n".join(lines) + "\n")
    return {"train_csv": str(paths["train"]), "validation_csv": str(paths["validation"]),
            "n_train": len(rows["train"]), "n_validation": len(rows["validation"]), "seconds": seconds}


def training_config(model_dir: str | os.PathLike, train_csv: str, validation_csv: str, steps: int = 300,
                    sample_rate: int = 16000, frame_length: int = 1024, frame_step: int = 256, T: int = 128,
                    F: int = 256, conv_n_filters: tuple[int, ...] = (8, 16, 32, 32, 64, 64),
                    batch_size: int = 4, learning_rate: float = 1e-3, chunk_seconds: float = 4.0,
                    cache_dir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """A reduced Spleeter 2-stem configuration (same keys and model type as ``spleeter:2stems``).

    Parameters
    ----------
    model_dir : path
        Where checkpoints go (absolute: Spleeter then ignores MODEL_PATH for it).
    train_csv, validation_csv : str
        Written by :func:`write_training_set`.
    steps : int
        Training steps (``train_max_steps``); one checkpoint and one evaluation at the end.
    sample_rate, frame_length, frame_step, T, F :
        STFT and patch sizes. T and F must be multiples of 64 (six stride-2 U-Net levels);
        ``F <= frame_length / 2 + 1``; a training chunk must hold ``T`` frames. Bins above F get the
        average mask of the bins below (``mask_extension: average``).
    conv_n_filters : tuple of 6 ints
        U-Net encoder widths (production: 16 ... 512; with the default T, F: ~100x fewer multiply-adds).
    batch_size, learning_rate, chunk_seconds, seed :
        Training settings; ``chunk_seconds`` is the length of the training excerpts.
    cache_dir : path, optional
        Spectrogram cache (default: next to ``model_dir``).

    Returns
    -------
    dict, JSON-serialisable.
    """
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps}")
    if T % 64 or F % 64 or F > frame_length // 2 + 1:
        raise ParameterError(f"T and F must be multiples of 64 and F <= frame_length/2+1, got T={T}, F={F}, "
                             f"frame_length={frame_length}")
    if len(conv_n_filters) != 6:
        raise ParameterError(f"conv_n_filters needs 6 widths (the 6 U-Net levels), got {conv_n_filters}")
    if chunk_seconds * sample_rate - frame_length <= T * frame_step:
        raise ParameterError(f"chunk_seconds={chunk_seconds} is too short for T={T} frames of {frame_step} "
                             f"samples at {sample_rate} Hz")
    model_dir = Path(model_dir).absolute()
    cache = Path(cache_dir).absolute() if cache_dir else model_dir.parent / f"{model_dir.name}-cache"
    return {
        "train_csv": str(train_csv), "validation_csv": str(validation_csv), "model_dir": str(model_dir),
        "mix_name": "mix", "instrument_list": ["vocals", "accompaniment"],
        "sample_rate": int(sample_rate), "frame_length": int(frame_length), "frame_step": int(frame_step),
        "T": int(T), "F": int(F), "n_channels": 2, "separation_exponent": 2, "mask_extension": "average",
        "learning_rate": float(learning_rate), "batch_size": int(batch_size),
        "chunk_duration": float(chunk_seconds), "n_chunks_per_song": 2,
        "training_cache": str(cache / "training"), "validation_cache": str(cache / "validation"),
        "train_max_steps": int(steps), "throttle_secs": 100000, "random_seed": int(seed),
        "save_checkpoints_steps": int(steps), "save_summary_steps": int(steps),
        "model": {"type": "unet.unet", "params": {"conv_n_filters": [int(n) for n in conv_n_filters]}},
    }


def train_spleeter(config: dict, dataset_dir: str | os.PathLike, env_python: str | os.PathLike | None = None,
                   timeout_s: float = 3600.0) -> dict:
    """Run ``python -m spleeter train`` in the Spleeter environment and finish the model directory.

    Parameters
    ----------
    config : dict
        From :func:`training_config`; written to ``<model_dir>/params.json`` (the ``params`` the
        separator takes afterwards).
    dataset_dir : path
        The directory of :func:`write_training_set` (CSV paths are relative to it).
    env_python : path, optional
        See :func:`~lid_spark.audio.separation.spleeter_process.resolve_env_python`.
    timeout_s : float
        Longest training time.

    Returns
    -------
    dict with ``params`` (the JSON path), ``model_dir``, ``steps``, ``seconds`` (wall time).

    Raises
    ------
    RuntimeError
        When Spleeter fails; the message holds the end of its log.
    """
    python = resolve_env_python(env_python)
    model_dir = Path(config["model_dir"])
    model_dir.mkdir(parents=True, exist_ok=True)
    params_path = model_dir / "params.json"
    params_path.write_text(json.dumps(config, indent=2))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # The adapter module sits next to the worker script; the model dir is absolute, so MODEL_PATH is moot.
    env.update(PYTHONPATH=str(WORKER_SCRIPT.parent), TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1")
    command = [str(python), "-m", "spleeter", "train", "-p", str(params_path), "-d", str(Path(dataset_dir)),
               "--adapter", ADAPTER]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
    seconds = time.perf_counter() - started
    log = (result.stdout + result.stderr).strip().splitlines()
    if result.returncode != 0:
        raise RuntimeError(f"spleeter train failed (exit {result.returncode}): " + "\n".join(log[-25:]))
    if not (model_dir / "checkpoint").is_file():
        raise RuntimeError(f"spleeter train wrote no checkpoint into {model_dir}: " + "\n".join(log[-25:]))
    (model_dir / ".probe").write_text("OK")  # Spleeter writes it too; make the directory complete regardless
    return {"params": str(params_path), "model_dir": str(model_dir), "steps": int(config["train_max_steps"]),
            "seconds": seconds}


def read_world_stems(world_dir: str | os.PathLike, limit: int | None = None):
    """Yield ``(track_id, vocals, accompaniment, sample_rate)`` from a synthetic world's ``stems/``
    (``<track_id>.vocals.flac`` + ``<track_id>.accompaniment.flac``), in track-id order.

    Raises
    ------
    InputError
        When the directory has no stems (build the world with ``synth.write_stems=true``).
    """
    import soundfile as sf

    folder = Path(world_dir) / "stems"
    vocal_files = sorted(folder.glob("*.vocals.flac"))
    if not vocal_files:
        raise InputError(f"no stems under {folder}: build the synthetic world with synth.write_stems=true")
    for path in vocal_files[:limit]:
        track_id = path.name[: -len(".vocals.flac")]
        other = folder / f"{track_id}.accompaniment.flac"
        if not other.is_file():
            raise InputError(f"{path} has no matching {other.name}")
        vocals, sr_v = sf.read(path, dtype="float32", always_2d=False)
        accompaniment, sr_a = sf.read(other, dtype="float32", always_2d=False)
        if sr_v != sr_a:
            raise InputError(f"stems of {track_id} differ in sample rate ({sr_v} and {sr_a})")
        yield track_id, _mono(vocals), _mono(accompaniment), int(sr_v)


def _mono(wave: np.ndarray) -> np.ndarray:
    return wave if wave.ndim == 1 else wave.mean(axis=1)


def sung_stems(index: int, seconds: float = 6.0, sample_rate: int = 16000, vocal_db: float = -4.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True stems of one short synthetic song, for training and measuring separation without a world.

    The synthetic world's own renderer (``lid_spark.tools.synth``) makes whole catalogs; this draws just the
    two stems with the same instruments: a sung espeak-ng line (:func:`lid_spark.tools.synth.singing.sing_line`)
    over a genre's accompaniment (:func:`lid_spark.tools.synth.music.accompaniment`).

    Parameters
    ----------
    index : int
        Song number: language, genre, voice and melody are drawn from ``(seed, index)``.
    seconds, sample_rate :
        Length and rate of both stems.
    vocal_db : float
        Vocal level relative to the accompaniment (RMS over the whole song).
    seed : int

    Returns
    -------
    (vocals, accompaniment): float32 arrays of ``round(seconds * sample_rate)`` samples.

    Example
    -------
    >>> vocals, accompaniment = sung_stems(0, seconds=3.0)
    >>> vocals.shape == accompaniment.shape == (48000,)
    True
    """
    from lid_spark.tools.synth.lexicon import vocabulary
    from lid_spark.tools.synth.music import GENRES, accompaniment, get_genre, plan_song
    from lid_spark.tools.synth.singing import VARIANTS, Voice, sing_line

    rng = np.random.default_rng([seed, index])
    languages = ("en", "es", "de", "fr", "it", "hi", "ja")
    language = languages[index % len(languages)]
    genre = get_genre(sorted(GENRES)[index % len(GENRES)])
    song = plan_song(genre, rng, seconds)
    backing = accompaniment(song, genre, rng, sample_rate)
    vocals = np.zeros_like(backing)
    start = int(rng.uniform(0.2, 0.8) * sample_rate)
    voice = Voice(language, VARIANTS[int(rng.integers(len(VARIANTS)))], int(rng.integers(30, 70)))
    words = vocabulary(language)
    while start < vocals.size - sample_rate // 2:  # lines with short rests until the song ends
        line_words = [words[int(i)] for i in rng.integers(len(words), size=4)]
        midis = [song.tonic_midi + 12 + int(song.scale[int(i)]) for i in rng.integers(len(song.scale), size=4)]
        line, _ = sing_line(line_words, midis, voice, 60.0 / song.tempo, sample_rate, hold_last_beats=1.0)
        n = min(line.size, vocals.size - start)
        vocals[start:start + n] = line[:n]
        start += n + int(rng.uniform(0.2, 0.6) * sample_rate)
    gain = 10 ** (vocal_db / 20) * _rms(backing) / max(_rms(vocals), 1e-9)
    return (gain * vocals).astype(np.float32), backing.astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
