"""The ``spleeter`` separation backend: the real Spleeter, in an environment of its own, driven over pipes.

Spleeter 2.4 pins Python < 3.12, TensorFlow 2.12 and numpy < 2, so it cannot be imported next to
PySpark 4 and numpy 2. :class:`SpleeterSeparator` instead starts ONE long-lived process of the Spleeter
environment's Python running ``spleeter_worker.py`` (lazily, on the first track), which loads the model
once; each track then travels as raw float32 samples in a length-prefixed frame on the process's stdin,
and its vocal stem comes back the same way on stdout: no process start, no temp file, no model reload per
track. :func:`shared_separator` keeps one such process per Python worker and configuration, so every
batch a Spark Python worker handles reuses it.

Models follow Spleeter's ``MODEL_PATH`` convention: ``spleeter:2stems`` is read from
``<model_path>/2stems/`` (checkpoint files and a ``.probe`` marker), so the production models are used
unchanged; a JSON configuration (``params``) selects any other model, e.g. one trained with
``lid-spark train_spleeter``. Nothing is downloaded: a missing directory is an error before any work.

Failures: a missing environment or model directory is a :class:`~lid_spark.errors.ParameterError` at
construction, naming the command or path that fixes it. A process that dies or hangs mid-track raises
:class:`SeparationFailed` (status ``separation_failed``) for that track only; the next track starts a
fresh process, up to ``max_restarts`` times, after which :class:`SpleeterUnavailable` stops the job cleanly.

Example
-------
>>> sep = SpleeterSeparator(env_python=".venv-spleeter/bin/python", model_path="pretrained_models")  # doctest: +SKIP
>>> vocals = sep.separate(wave, 16000)                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import selectors
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from lid_spark.audio.decode import AudioError
from lid_spark.audio.separation.base import SeparationUnavailable, Separator
from lid_spark.errors import ParameterError
from lid_spark.package_data import package_path
from lid_spark.schemas import STATUS_SEPARATION_FAILED

# A real file (with the adapter module beside it), even from a zipped wheel.
WORKER_SCRIPT = package_path("audio", "separation") / "spleeter_worker.py"
_CHECKOUT = Path(__file__).resolve().parents[3]
# A checkout keeps the environment beside its .venv; an installed package, in the working directory.
DEFAULT_ENV = (_CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()) / ".venv-spleeter"
BUILD_COMMAND = "lid-spark spleeter_env"
_HEADER_BYTES = 4


class SeparationFailed(AudioError):
    """Spleeter could not separate one track; ``status`` is ``separation_failed``, the message says why."""

    def __init__(self, message: str):
        super().__init__(STATUS_SEPARATION_FAILED, message)


class SpleeterUnavailable(SeparationUnavailable):
    """The Spleeter process cannot be (re)started: stop the job (a rerun resumes where it stopped)."""


def resolve_env_python(env: str | os.PathLike | None = None) -> Path:
    """The Python executable of the Spleeter environment.

    Parameters
    ----------
    env : path, optional
        The environment's directory or its Python executable (``audio.separation.spleeter_env``);
        default ``.venv-spleeter`` in the project checkout (the working directory for an installed package).

    Returns
    -------
    pathlib.Path of an existing executable.

    Raises
    ------
    ParameterError
        When there is none, naming the command that builds it.
    """
    path = Path(env).absolute() if env else DEFAULT_ENV  # absolute, not resolved: a venv's python is a symlink
    python = path / "bin" / "python" if path.is_dir() else path
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise ParameterError(
            f"audio.separation.spleeter_env: no Spleeter environment at {path} (no Python executable "
            f"{python}). Build it with `{BUILD_COMMAND}` (or point audio.separation.spleeter_env at the "
            "python of an environment with requirements/spleeter.txt installed).")
    return python


def resolve_model_path(model_path: str | os.PathLike | None = None) -> Path:
    """The ``MODEL_PATH`` directory: ``model_path``, else the MODEL_PATH variable, else Spleeter's
    ``pretrained_models`` (relative to the working directory, as Spleeter does)."""
    return Path(model_path or os.environ.get("MODEL_PATH") or "pretrained_models").absolute()


def model_directory(params: str, model_path: str | os.PathLike | None = None) -> Path:
    """Where Spleeter will read the checkpoint of ``params`` from, checked to hold a trained model.

    Parameters
    ----------
    params : str
        ``spleeter:<name>`` (Spleeter's embedded configurations: model directory ``<name>``) or the
        path of a Spleeter JSON configuration (its ``model_dir``, relative to ``model_path`` unless absolute).
    model_path : path, optional
        See :func:`resolve_model_path`.

    Returns
    -------
    pathlib.Path of the model directory.

    Raises
    ------
    ParameterError
        When the configuration or the model directory (``.probe`` marker and TensorFlow ``checkpoint``
        index) is missing: Spleeter would otherwise try to download it.

    Example
    -------
    >>> model_directory("spleeter:2stems", "/nonexistent")
    Traceback (most recent call last):
    ...
    lid_spark.errors.ParameterError: audio.separation.spleeter_models: no Spleeter model at /nonexistent/2stems ...
    """
    if params.startswith("spleeter:"):
        name = params.split(":", 1)[1]
    else:
        config = Path(params)
        if not config.is_file():
            raise ParameterError(f"audio.separation.spleeter_params: no Spleeter configuration file {params} "
                                 "(use spleeter:2stems or the path of a Spleeter JSON configuration)")
        try:
            name = json.loads(config.read_text())["model_dir"]
        except (ValueError, KeyError) as e:
            raise ParameterError(f"audio.separation.spleeter_params: {params} is not a Spleeter configuration "
                                 f"with a model_dir ({e!r})") from None
    directory = resolve_model_path(model_path) / name
    missing = [f for f in (".probe", "checkpoint") if not (directory / f).is_file()]
    if missing:
        raise ParameterError(
            f"audio.separation.spleeter_models: no Spleeter model at {directory} (missing "
            f"{', '.join(missing)}). Put the model there following Spleeter's MODEL_PATH layout "
            f"(e.g. the released 2stems.tar.gz unpacked into {directory}, plus an empty .probe file), "
            "or train one with `lid-spark train_spleeter`; nothing is downloaded.")
    return directory


class SpleeterSeparator(Separator):
    """Vocals by Spleeter, run in its own environment by one long-lived process.

    Parameters
    ----------
    env_python : path, optional
        The Spleeter environment (directory or python); see :func:`resolve_env_python`.
    model_path : path, optional
        Spleeter's MODEL_PATH; see :func:`resolve_model_path`.
    params : str
        ``spleeter:2stems`` (default: the production model) or a Spleeter JSON configuration.
    timeout_s : float
        Longest wait for one track's vocals before the process is declared hung and killed.
    startup_timeout_s : float
        Longest wait for the process to import TensorFlow and load the model.
    max_restarts : int
        Process restarts allowed after failures; one more failure raises :class:`SpleeterUnavailable`.

    Attributes
    ----------
    sample_rate : int or None
        The model's sample rate, once the process has started.
    tracks, restarts : int
        Tracks separated, and processes restarted after a failure, by this separator.

    Example
    -------
    >>> SpleeterSeparator(env_python="/nonexistent")
    Traceback (most recent call last):
    ...
    lid_spark.errors.ParameterError: audio.separation.spleeter_env: no Spleeter environment at /nonexistent ...
    """

    name = "spleeter"

    def __init__(self, env_python: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
                 params: str = "spleeter:2stems", timeout_s: float = 600.0, startup_timeout_s: float = 300.0,
                 max_restarts: int = 3):
        if timeout_s <= 0 or startup_timeout_s <= 0:
            raise ParameterError(f"audio.separation.spleeter_timeout_s must be positive, got {timeout_s}")
        if max_restarts < 0:
            raise ParameterError(f"audio.separation.spleeter_max_restarts must be >= 0, got {max_restarts}")
        self.python = resolve_env_python(env_python)
        self.model_path = resolve_model_path(model_path)
        self.model_dir = model_directory(params, self.model_path)
        self.params = params
        self.timeout_s = float(timeout_s)
        self.startup_timeout_s = float(startup_timeout_s)
        self.max_restarts = int(max_restarts)
        self.restarts = 0        # processes started after a failure
        self.tracks = 0          # tracks separated by this separator
        self.sample_rate: int | None = None   # the model's, known once the process is ready
        self._process: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the running Spleeter process (None before the first track or after close())."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def separate(self, wave: np.ndarray, sr: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ParameterError(f"separate() takes a mono wave, got shape {wave.shape}")
        if sr <= 0:
            raise ParameterError(f"separate() needs a positive sample rate, got {sr}")
        if wave.size == 0:
            return wave.copy()
        with self._lock:
            self._ensure_started()
            model_wave = _resample(wave, sr, self.sample_rate)
            header, payload = self._request({"op": "separate", "n_samples": int(model_wave.size)},
                                             model_wave.astype("<f4").tobytes())
            if not header.get("ok"):
                raise SeparationFailed(f"Spleeter rejected the track: {header.get('error')}")
            vocals = np.frombuffer(payload, dtype="<f4")
            self.tracks += 1
        vocals = _resample(vocals, self.sample_rate, sr)
        return _fit_length(vocals, wave.size)

    def close(self) -> None:
        """Stop the Spleeter process (a later separate() starts a new one)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                _write_frame(process.stdin, {"op": "quit"})
                process.wait(timeout=10)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- process management ---------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None:  # died since the last track (its failure was already counted)
            self._discard_process()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        # Spleeter reads MODEL_PATH when it is imported; TensorFlow's C++ logging would flood stderr.
        env.update(MODEL_PATH=str(self.model_path), TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1",
                   PYTHONUNBUFFERED="1")
        self._stderr.clear()
        self._process = subprocess.Popen(
            [str(self.python), str(WORKER_SCRIPT), "--params", self.params],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        threading.Thread(target=_drain, args=(self._process.stderr, self._stderr), daemon=True).start()
        try:
            header, _ = self._read_frame(self.startup_timeout_s)
        except (SeparationFailed, SpleeterUnavailable) as e:
            # A process that cannot start is a broken environment, not a bad track: stop, don't mark tracks.
            raise SpleeterUnavailable(f"Spleeter process did not start ({e}). Check the environment "
                                      f"{self.python} (rebuild: `{BUILD_COMMAND}`)") from None
        if not header.get("ready"):
            self._discard_process()
            raise SpleeterUnavailable(f"Spleeter could not load {self.params} from {self.model_dir}: "
                                      f"{header.get('error')}{self._stderr_tail()}")
        self.sample_rate = int(header["sample_rate"])

    def _request(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        try:
            _write_frame(self._process.stdin, header, payload)
        except (BrokenPipeError, OSError, ValueError) as e:
            raise self._give_up_or_fail(f"cannot send the track to Spleeter ({e!r})") from None
        return self._read_frame(self.timeout_s)

    def _read_frame(self, timeout_s: float) -> tuple[dict, bytes]:
        deadline = time.monotonic() + timeout_s
        stream = self._process.stdout
        prefix = self._read_exact(stream, _HEADER_BYTES, deadline, timeout_s)
        header = json.loads(self._read_exact(stream, int.from_bytes(prefix, "little"), deadline, timeout_s))
        n_bytes = int(header.get("n_bytes", 0))
        return header, self._read_exact(stream, n_bytes, deadline, timeout_s) if n_bytes else b""

    def _read_exact(self, stream, n: int, deadline: float, timeout_s: float) -> bytes:
        chunks, got = [], 0
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while got < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise self._give_up_or_fail(f"no answer from Spleeter process {self._process.pid} within "
                                                f"{timeout_s:g} s (hung; killed)")
                chunk = os.read(stream.fileno(), min(n - got, 1 << 20))
                if not chunk:
                    code = self._process.wait()
                    raise self._give_up_or_fail(f"Spleeter process {self._process.pid} died (exit code {code})")
                chunks.append(chunk)
                got += len(chunk)
        return b"".join(chunks)

    def _give_up_or_fail(self, reason: str) -> Exception:
        """Kill the process; the error for this track, or the one that stops the job once restarts run out."""
        reason += self._stderr_tail()
        self._discard_process()
        if self.restarts >= self.max_restarts:
            return SpleeterUnavailable(f"{reason} (after {self.restarts} restarts, "
                                       "audio.separation.spleeter_max_restarts)")
        self.restarts += 1
        return SeparationFailed(reason)

    def _discard_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def _stderr_tail(self) -> str:
        lines = [line for line in list(self._stderr)[-5:] if line.strip()]
        return ("; stderr: " + " | ".join(lines)) if lines else ""


_SHARED: dict[tuple, SpleeterSeparator] = {}
_SHARED_LOCK = threading.Lock()


def shared_separator(env_python=None, model_path=None, params: str = "spleeter:2stems", timeout_s: float = 600.0,
                     startup_timeout_s: float = 300.0, max_restarts: int = 3) -> SpleeterSeparator:
    """The process-wide :class:`SpleeterSeparator` for these settings (one Spleeter process per Python
    worker, reused by every batch and UDF of that worker; stopped when the worker exits)."""
    key = (str(env_python), str(resolve_model_path(model_path)), params, float(timeout_s),
           float(startup_timeout_s), int(max_restarts))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SpleeterSeparator(env_python, model_path, params, timeout_s, startup_timeout_s,
                                             max_restarts)
        return _SHARED[key]


@atexit.register
def _close_shared() -> None:
    for separator in _SHARED.values():
        separator.close()


def _write_frame(stream, header: dict, payload: bytes = b"") -> None:
    text = json.dumps(dict(header, n_bytes=len(payload))).encode("utf-8")
    stream.write(len(text).to_bytes(_HEADER_BYTES, "little") + text)
    if payload:
        stream.write(payload)
    stream.flush()


def _drain(stream, lines: collections.deque) -> None:
    """Keep the last lines of the process's stderr (and never let the pipe fill up and block it)."""
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode("utf-8", "replace").rstrip())


def _resample(wave: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to:
        return np.asarray(wave, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(wave, dtype=np.float32), sr_from, sr_to, quality="HQ").astype(np.float32)


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    if wave.size >= n:
        return np.ascontiguousarray(wave[:n], dtype=np.float32)
    return np.pad(wave, (0, n - wave.size)).astype(np.float32)
