"""espeak-ng driven through ctypes: text in any of its 100+ languages to a float waveform.

The library and its voice data come from the ``espeakng-loader`` wheel, so no system package is
needed. espeak-ng keeps global state, so calls are serialised by a lock (one engine per process;
Spark's Python workers each load their own).

Output is deterministic: the same call gives the same samples whatever was spoken before.
espeak-ng's pitch "flutter" walks a table whose position carries over from call to call, as do
the echo buffer and the "roughness" cycle counter of some variants, and its noise sources use a
random generator; the engine therefore runs on a private overlay of the voice data (symlinks)
whose variants have flutter, echo and roughness switched off, and reseeds the generator before
every call. (Flat, clean voices also suit singing: the synthesizer adds its own vibrato and echo.)

Example
-------
>>> wave = speak("bonjour tout le monde", voice="fr", pitch=60)
>>> wave.dtype, wave.ndim
(dtype('float32'), 1)
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from lid_spark.errors import ParameterError

ESPEAK_SAMPLE_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_STEADY_VARIANT = "lid-steady"   # flutter, echo, roughness off, nothing else changed: used when no variant is asked for
_RAND_SEED = 20240521
_lock = threading.Lock()
_engine: _Engine | None = None


class _Engine:
    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_dir = Path(espeakng_loader.get_data_path())
        overlay = _steady_overlay(data_dir)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(overlay.parent).encode(), 0)
        if rate <= 0:
            # Some builds want the data directory itself.
            rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(overlay).encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {data_dir}")
        self.sample_rate = rate
        self.voices = {p.name for p in (data_dir / "lang").rglob("*") if p.is_file()}
        self.variants = {p.name for p in (data_dir / "voices" / "!v").iterdir() if p.is_file()}
        self.chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]

    def _collect(self, wav, num_samples, _events):
        if num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synth(self, text: str, voice: str, params: dict[str, int]) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ParameterError(f"espeak-ng has no voice {voice!r}")
        for name, value in params.items():
            self.lib.espeak_SetParameter(_PARAM[name], int(value), 0)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        self.chunks = []
        self.lib.espeak_ng_SetRandSeed(_RAND_SEED)
        status = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak-ng synthesis failed with status {status} for voice {voice!r}")
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(self.chunks).astype(np.float32) / 32768.0)


def _steady_overlay(data_dir: Path) -> Path:
    """A per-process copy of espeak-ng's data directory (symlinks) whose variants have flutter, echo and
    roughness off: the three sources of call-to-call state."""
    root = Path(tempfile.mkdtemp(prefix="lid-spark-espeak-"))
    atexit.register(shutil.rmtree, root, True)
    overlay = root / data_dir.name
    overlay.mkdir()
    for entry in data_dir.iterdir():
        if entry.name != "voices":
            (overlay / entry.name).symlink_to(entry)
    for voices_entry in (data_dir / "voices").iterdir():
        if voices_entry.name != "!v":
            (overlay / "voices").mkdir(exist_ok=True)
            (overlay / "voices" / voices_entry.name).symlink_to(voices_entry)
    variants = overlay / "voices" / "!v"
    variants.mkdir(parents=True)
    for variant in (data_dir / "voices" / "!v").iterdir():
        if variant.is_file():
            text = variant.read_text(encoding="utf-8", errors="replace")
            (variants / variant.name).write_text(text.rstrip("\n") + "\nflutter 0\necho 0 0\nroughness 0\n",
                                                 encoding="utf-8")
    (variants / _STEADY_VARIANT).write_text(f"language variant\nname {_STEADY_VARIANT}\n"
                                            "flutter 0\necho 0 0\nroughness 0\n", encoding="utf-8")
    return overlay


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def available_voices() -> set[str]:
    """Names of the language voices espeak-ng ships (``"en"``, ``"ta"``, ``"cmn"``, ...)."""
    with _lock:
        return set(_get_engine().voices)


def speak(text: str, voice: str, rate: int = 160, pitch: int = 50, pitch_range: int = 50,
          variant: str | None = None, sample_rate: int = ESPEAK_SAMPLE_RATE) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng; returns mono float32 samples in [-1, 1].

    Parameters
    ----------
    text : str
        UTF-8 text in the voice's language (native script).
    voice : str
        espeak-ng voice name, e.g. ``"ta"``; ``variant`` (e.g. ``"f3"``, ``"m2"``) selects a
        speaker variant as in ``espeak-ng -v ta+f3``.
    rate : int
        Words per minute (80-450).
    pitch, pitch_range : int
        Base pitch and intonation range, 0-100.
    sample_rate : int
        Output rate; espeak-ng speaks at 22050 Hz and is resampled if another rate is asked for.
    """
    if not 80 <= rate <= 450:
        raise ParameterError(f"rate must be 80..450 words per minute, got {rate}")
    if not (0 <= pitch <= 100 and 0 <= pitch_range <= 100):
        raise ParameterError(f"pitch and pitch_range must be 0..100, got {pitch}, {pitch_range}")
    name = f"{voice}+{variant or _STEADY_VARIANT}"
    with _lock:
        engine = _get_engine()
        wave = engine.synth(text, name, {"rate": rate, "pitch": pitch, "range": pitch_range, "volume": 100})
        native_rate = engine.sample_rate
    if sample_rate != native_rate and wave.size:
        import librosa

        wave = librosa.resample(wave, orig_sr=native_rate, target_sr=sample_rate, res_type="soxr_hq")
    return wave.astype(np.float32, copy=False)
