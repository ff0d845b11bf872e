"""Decoding audio files of any format, rate and channel count to mono float32 at one model rate.

Files are streamed block by block (``soundfile.blocks``) through a streaming resampler (soxr), so
memory stays bounded by ``max_seconds`` of output whatever the length of the file; a longer file
is cut there and marked ``truncated``. Formats are those of libsndfile (WAV, FLAC, OGG/Vorbis,
Opus, MP3 from libsndfile 1.1); anything else falls back to ``audioread`` when it is installed
with a system decoder.

Where a file lives is given by a URI: a local path, ``file:/...``, ``dbfs:/...`` (read through the
``/dbfs`` FUSE mount), ``s3a://`` (read as ``s3://``) or any other fsspec protocol when fsspec and
its filesystem package are installed.

Problems are typed: :class:`AudioError` carries a ``status`` code (``missing_file``,
``unreadable``, ``empty``) that the feature tables keep per track.

Example
-------
>>> import numpy as np, soundfile as sf, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> sf.write(path, np.zeros((44100, 2), dtype="float32"), 44100)
>>> audio = decode(path, sample_rate=16000)
>>> audio.wave.shape, audio.source_rate, audio.channels
((16000,), 44100, 2)
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import numpy as np

from lid_spark.errors import ParameterError
from lid_spark.schemas import STATUS_EMPTY, STATUS_MISSING, STATUS_UNREADABLE

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class AudioError(Exception):
    """A track's audio could not be decoded; ``status`` says why (one of :data:`lid_spark.schemas.STATUSES`)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at ``sample_rate``, with what was learned about the source."""

    wave: np.ndarray
    sample_rate: int
    source_rate: int
    channels: int
    source_seconds: float | None   # length of the whole file when the container says so
    truncated: bool
    damage: str | None = None      # the decoder's error when the file broke off after ``seconds`` (kept)

    @property
    def seconds(self) -> float:
        return len(self.wave) / self.sample_rate


def resolve_uri(uri: str, audio_root: str | None = None) -> str:
    """Map a catalog ``audio_uri`` to what can be opened: a local path or an fsspec URL.

    Parameters
    ----------
    uri : str
        Local path (absolute or relative), ``file:`` URI, ``dbfs:/`` path, ``s3a://`` or any URL.
    audio_root : str or None
        Prefix for relative paths (``inputs.audio_root``).

    Returns
    -------
    str
        A local filesystem path, or a URL with a protocol fsspec understands.

    Example
    -------
    >>> resolve_uri("file:///music/a.flac"), resolve_uri("dbfs:/mnt/a.flac"), resolve_uri("s3a://b/a.mp3")
    ('/music/a.flac', '/dbfs/mnt/a.flac', 's3://b/a.mp3')
    >>> resolve_uri("a.flac", audio_root="/music")
    '/music/a.flac'
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ParameterError(f"audio uri must be a non-empty string, got {uri!r}")
    uri = uri.strip()
    match = _SCHEME_RE.match(uri)
    scheme = match.group(1).lower() if match else None
    if scheme is not None and len(scheme) == 1:
        scheme = None  # a Windows drive letter, not a URI scheme
    if scheme == "file":
        return unquote(urlparse(uri).path)
    if scheme == "dbfs":
        return "/dbfs/" + uri[len("dbfs:"):].lstrip("/")
    if scheme in ("s3a", "s3n"):
        return "s3://" + uri.split("://", 1)[1]
    if scheme is not None:
        return uri
    if audio_root and not os.path.isabs(uri):
        root = audio_root.rstrip("/")
        return resolve_uri(f"{root}/{uri}") if _SCHEME_RE.match(root) else os.path.join(root, uri)
    return uri


def _is_url(location: str) -> bool:
    match = _SCHEME_RE.match(location)
    return bool(match) and len(match.group(1)) > 1


@contextmanager
def _open_binary(location: str):
    """A readable binary file for ``location``; missing files raise AudioError(missing_file)."""
    if not _is_url(location):
        if not os.path.exists(location):
            raise AudioError(STATUS_MISSING, f"no such file: {location}")
        if os.path.isdir(location):
            raise AudioError(STATUS_UNREADABLE, f"{location} is a directory, not an audio file")
        with open(location, "rb") as f:
            yield f
        return
    try:
        import fsspec
    except ImportError:
        raise AudioError(STATUS_UNREADABLE, f"reading {location} needs fsspec (and its filesystem package) "
                                            "installed on the executors") from None
    try:
        with fsspec.open(location, "rb") as f:
            yield f
    except FileNotFoundError as e:
        raise AudioError(STATUS_MISSING, f"no such file: {location} ({e})") from None
    except ImportError as e:
        raise AudioError(STATUS_UNREADABLE, f"no filesystem for {location}: {e}") from None
    except ValueError as e:  # fsspec: "Protocol not known" (a typo'd or unsupported scheme)
        raise AudioError(STATUS_UNREADABLE, f"cannot open {location}: {e}") from None


def audio_stat(uri: str | None, audio_root: str | None = None) -> str | None:
    """The size and modification stamp of the file behind ``uri``, as ``"<bytes>:<stamp>"``; None when absent.

    extract_features compares it with the one recorded in ``audio_status``: a file rewritten under
    the same URI gets a new stamp and is extracted again. A stat is one metadata call per file (a
    content hash would read every file on every run); the stamp is the local ``mtime`` in
    nanoseconds, or what the fsspec filesystem reports (``mtime``, ``LastModified``, ``ETag``, ...).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".flac") as f:
    ...     _ = f.write(b"abc"); f.flush()
    ...     audio_stat(f.name).startswith("3:")
    True
    >>> audio_stat("no/such/file.flac") is None, audio_stat(None) is None
    (True, True)
    """
    if uri is None or not str(uri).strip():
        return None
    location = resolve_uri(str(uri), audio_root)
    try:
        if not _is_url(location):
            st = os.stat(location)
            return f"{st.st_size}:{st.st_mtime_ns}"
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - missing, unreachable or no filesystem: decode says why
        return None
    stamp = next((info[k] for k in ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag")
                  if info.get(k) is not None), None)
    return f"{info.get('size')}:{stamp}"


def decode(uri: str, sample_rate: int = 16000, max_seconds: float = 900.0, audio_root: str | None = None,
           block_seconds: float = 20.0) -> DecodedAudio:
    """Decode ``uri`` to mono float32 at ``sample_rate``, streaming, keeping at most ``max_seconds``.

    Parameters
    ----------
    uri : str
        Where the file is (see :func:`resolve_uri`).
    sample_rate : int
        Output rate in Hz (the models' rate, 16 kHz for ECAPA).
    max_seconds : float
        Output longer than this is cut; the result is marked ``truncated``.
    audio_root : str or None
        Prefix for relative paths.
    block_seconds : float
        Source audio read per block: peak memory is about this much audio in the source format
        plus ``max_seconds`` of output.

    Returns
    -------
    DecodedAudio

    Raises
    ------
    AudioError
        ``missing_file``, ``unreadable`` (corrupt or unsupported) or ``empty`` (no samples).
    ParameterError
        For a non-positive rate or length.
    """
    if sample_rate <= 0:
        raise ParameterError(f"audio.sample_rate must be positive, got {sample_rate}")
    if max_seconds <= 0:
        raise ParameterError(f"audio.max_seconds must be positive, got {max_seconds}")
    if block_seconds <= 0:
        raise ParameterError(f"block_seconds must be positive, got {block_seconds}")
    location = resolve_uri(uri, audio_root)
    with _open_binary(location) as f:
        if _size(f) == 0:
            raise AudioError(STATUS_EMPTY, f"{location} is a zero-length file")
        try:
            return _decode_soundfile(f, location, sample_rate, max_seconds, block_seconds)
        except AudioError as e:
            if e.status != STATUS_UNREADABLE or _is_url(location):
                raise
            soundfile_error = e
    # libsndfile does not know this format: try the system decoders audioread drives (ffmpeg, gstreamer).
    try:
        return _decode_audioread(location, sample_rate, max_seconds)
    except AudioError as e:
        raise AudioError(e.status, f"{soundfile_error.message}; {e.message}") from None


def _size(f) -> int | None:
    try:
        here = f.tell()
        size = f.seek(0, os.SEEK_END)
        f.seek(here)
        return size
    except (OSError, AttributeError, ValueError):
        return None


class _MonoResampler:
    """Streams blocks of (frames, channels) audio to mono at the output rate, up to a sample limit."""

    def __init__(self, source_rate: int, sample_rate: int, max_samples: int):
        import soxr

        self.stream = soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ") \
            if source_rate != sample_rate else None
        self.max_samples = max_samples
        self.parts: list[np.ndarray] = []
        self.kept = 0

    @property
    def full(self) -> bool:
        return self.kept >= self.max_samples

    def push(self, block: np.ndarray, last: bool = False) -> None:
        mono = block.mean(axis=1, dtype=np.float32) if block.ndim == 2 else block.astype(np.float32)
        if self.stream is not None:
            mono = self.stream.resample_chunk(mono, last=last)
        mono = np.asarray(mono, dtype=np.float32)[: self.max_samples - self.kept]
        if len(mono):
            self.parts.append(mono)
            self.kept += len(mono)

    def wave(self) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self.parts)


def _decode_soundfile(f, location: str, sample_rate: int, max_seconds: float, block_seconds: float) -> DecodedAudio:
    import soundfile as sf

    try:
        sound = sf.SoundFile(f)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(STATUS_UNREADABLE, f"cannot decode {location}: {e}") from None
    with sound:
        source_rate, channels = int(sound.samplerate), int(sound.channels)
        frames = int(sound.frames) if sound.frames and sound.frames > 0 else None
        max_samples = int(round(max_seconds * sample_rate))
        resampler = _MonoResampler(source_rate, sample_rate, max_samples)
        # Read a little past the limit so the resampler's delay is flushed before cutting.
        source_limit = int(np.ceil(max_seconds * source_rate)) + source_rate // 10
        block = max(1024, int(block_seconds * source_rate))
        read = 0
        truncated = False
        damage = None
        try:
            while read < source_limit:
                data = sound.read(min(block, source_limit - read), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                read += len(data)
                resampler.push(data)
            truncated = read >= source_limit and len(sound.read(1, dtype="float32", always_2d=True)) > 0
        except (sf.LibsndfileError, RuntimeError) as e:
            if read == 0:
                raise AudioError(STATUS_UNREADABLE, f"cannot decode {location}: {e}") from None
            # A damaged tail (a cut download, a bad sector): keep what decoded cleanly, say so.
            damage = str(e)
        resampler.push(np.zeros((0, channels), dtype=np.float32), last=True)
    wave = resampler.wave()
    truncated = truncated or (frames is not None and frames > source_limit)
    if len(wave) == 0:
        raise AudioError(STATUS_EMPTY, f"{location} holds no audio samples")
    return DecodedAudio(wave, sample_rate, source_rate, channels,
                        frames / source_rate if frames else None, truncated or damage is not None, damage)


def _decode_audioread(location: str, sample_rate: int, max_seconds: float) -> DecodedAudio:
    try:
        import audioread
    except ImportError:
        raise AudioError(STATUS_UNREADABLE, "audioread is not installed for other formats") from None
    try:
        with audioread.audio_open(location) as source:
            source_rate, channels = int(source.samplerate), int(source.channels)
            resampler = _MonoResampler(source_rate, sample_rate, int(round(max_seconds * sample_rate)))
            for buf in source:
                pcm = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
                resampler.push(pcm.reshape(-1, channels))
                if resampler.full:
                    break
            truncated = resampler.full
            resampler.push(np.zeros((0, channels), dtype=np.float32), last=True)
            duration = float(source.duration) if source.duration else None
    except (audioread.DecodeError, OSError, EOFError, ValueError) as e:
        raise AudioError(STATUS_UNREADABLE, f"audioread cannot decode {location}: {e!r}") from None
    wave = resampler.wave()
    if len(wave) == 0:
        raise AudioError(STATUS_EMPTY, f"{location} holds no audio samples")
    return DecodedAudio(wave, sample_rate, source_rate, channels, duration, truncated)
