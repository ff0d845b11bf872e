"""Train the offline stand-in for VoxLingua107: an ECAPA-TDNN spoken-language ID on espeak-ng speech.

No model hub is reachable from every cluster, so lid-spark trains its own small spoken-LID model on
synthetic speech in many languages: sentences of native-script CLDR words
(:func:`lid_spark.tools.synth.lexicon.vocabulary`) read by espeak-ng with varied speaker variants,
rates and pitch, a ``sung_share`` of them chanted (words held on notes) for the prosodic variety
that real speech corpora have, augmented with noise, reverberation, filtering, gain and random
crops; a ``music_share`` of them are laid over synthetic accompaniment and, a ``separated_share``
of those, passed through the pipeline's soft-mask separator (VoxLingua107's YouTube speech is
often over music; the vocals this model embeds come out of a separator). The model
has the layout of ``speechbrain/lang-id-voxlingua107-ecapa`` (Fbank -> sentence mean norm ->
ECAPA-TDNN -> x-vector classifier), so speechbrain's ``EncoderClassifier.from_hparams(source=dir)``
loads it.

Example
-------
>>> settings = PretrainSettings(languages=("en", "fr", "ta"), utterances_per_language=4,
...                             minutes=0.2, eval_utterances=2)
>>> report = pretrain(settings, "spoken-lid-model")          # doctest: +SKIP
>>> report["heldout_spoken"]["accuracy"]                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lid_spark import OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.errors import ParameterError
from lid_spark.progress import get_logger

SAMPLE_RATE = 16000

# Ten targets and forty others from several families and scripts, so that the classifier learns
# languages beyond the catalog's (as VoxLingua107 does) and "ot" has real competitors.
DEFAULT_LANGUAGES = TARGET_LANGUAGES + (
    "af", "am", "ar", "bg", "bn", "ca", "cmn", "cs", "da", "el", "et", "eu", "fa", "fi", "gu", "he",
    "hr", "hu", "hy", "id", "ka", "kn", "ko", "lt", "lv", "ml", "mr", "ne", "nl", "pl", "pt", "ro",
    "ru", "sv", "sw", "th", "tr", "uk", "ur", "vi")
# espeak-ng speaker variants: training speakers, and unseen speakers for the held-out test.
TRAIN_VARIANTS = (None, "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "klatt", "klatt2", "croak")
HELDOUT_VARIANTS = ("m7", "f4", "f5", "klatt3")
MAX_TRAIN_SECONDS = 6.0
# Voice over music at this level (voice RMS over accompaniment RMS, dB): a little wider than the
# synthetic catalog's default vocal levels, so the model is not fitted to exactly those.
MUSIC_VOICE_LEVEL_DB = (-9.0, 9.0)
_DATA_VERSION = 4  # bump when data generation changes, so that cached features are not reused


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that defines a pretraining run (the ``spoken_lid_pretrain`` config section)."""

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    utterances_per_language: int = 100    # training sentences per language (each ~3-6 s)
    sung_share: float = 0.5               # share of them chanted (words held on notes) instead of spoken
    music_share: float = 0.5              # share of them laid over synthetic accompaniment
    separated_share: float = 0.5          # share of those passed through the soft-mask vocal separator
    eval_utterances: int = 4              # held-out spoken and sung clips per language
    minutes: float = 20.0                 # training time budget (data generation not included)
    max_steps: int = 100000
    batch_size: int = 32
    crop_frames: tuple[int, int] = (100, 200)   # random crop length range, 10 ms frames
    learning_rate: float = 0.002
    n_mels: int = 60
    channels: int = 64                    # ECAPA channels of the four frame blocks (last is 3x)
    lin_neurons: int = 128                # embedding size
    seed: int = 20240501
    threads: int = 1                      # more threads oversubscribe a shared CPU
    workers: int = 1                      # processes generating training speech (one language each)

    def validate(self) -> None:
        if len(self.languages) < 2 or len(set(self.languages)) != len(self.languages):
            raise ParameterError("spoken_lid_pretrain.languages needs two or more distinct languages")
        for key in ("utterances_per_language", "eval_utterances", "max_steps", "batch_size", "n_mels",
                    "channels", "lin_neurons", "threads", "workers"):
            if getattr(self, key) < 1:
                raise ParameterError(f"spoken_lid_pretrain.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("sung_share", "music_share", "separated_share"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ParameterError(f"spoken_lid_pretrain.{key} must be within [0, 1], got {getattr(self, key)}")
        if self.minutes <= 0 or self.learning_rate <= 0:
            raise ParameterError("spoken_lid_pretrain.minutes and learning_rate must be positive")
        low, high = self.crop_frames
        if not 50 <= low <= high:
            raise ParameterError(f"spoken_lid_pretrain.crop_frames must be [low, high] with 50 <= low <= high, "
                                 f"got {self.crop_frames}")

    def data_key(self) -> str:
        """Hash of the settings that determine the generated data (the feature cache key)."""
        from lid_spark.audio.separation import SoftMaskSeparator

        # the separator's settings shape the separated share: a cache made with others must not be reused
        fields = (_DATA_VERSION, self.languages, self.utterances_per_language, self.sung_share, self.music_share,
                  self.separated_share, sorted(vars(SoftMaskSeparator()).items()), self.eval_utterances, self.n_mels,
                  self.seed)
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def settings_from_config(section) -> PretrainSettings:
    """PretrainSettings from the ``spoken_lid_pretrain`` config section (a Config or a mapping)."""
    values = dict(section.to_dict() if hasattr(section, "to_dict") else section)
    values.pop("cache_dir", None)
    languages = values.pop("languages", None) or DEFAULT_LANGUAGES
    if isinstance(languages, str):
        languages = [lang.strip() for lang in languages.split(",") if lang.strip()]
    crop = values.pop("crop_frames", PretrainSettings.crop_frames)
    if not (isinstance(crop, (list, tuple)) and len(crop) == 2):
        raise ParameterError(f"spoken_lid_pretrain.crop_frames must be [low, high], got {crop!r}")
    known = {f.name for f in dataclasses.fields(PretrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(f"unknown spoken_lid_pretrain keys: {', '.join(unknown)}")
    settings = PretrainSettings(languages=tuple(str(lang) for lang in languages),
                                crop_frames=(int(crop[0]), int(crop[1])), **values)
    settings.validate()
    return settings


def check_languages(languages) -> tuple[str, ...]:
    """Languages that espeak-ng can speak and CLDR has words for; ParameterError names the others."""
    from lid_spark.tools.synth.espeak import available_voices
    from lid_spark.tools.synth.lexicon import vocabulary

    voices = available_voices()
    bad = []
    for lang in languages:
        if lang not in voices:
            bad.append(f"{lang} (no espeak-ng voice)")
            continue
        try:
            vocabulary(lang)
        except ParameterError as exc:
            bad.append(f"{lang} ({exc})")
    if bad:
        raise ParameterError("spoken_lid_pretrain.languages: cannot train " + ", ".join(bad))
    return tuple(languages)


def language_label(code: str) -> str:
    """VoxLingua107-style label, ``"ta"`` -> ``"ta: Tamil"`` (English name from CLDR)."""
    from babel import Locale

    name = Locale("en").languages.get({"cmn": "zh"}.get(code, code), code)
    return f"{code}: {name}"


def random_sentence(words: tuple[str, ...], rng: np.random.Generator, n_words: int) -> str:
    """``n_words`` words drawn from ``words``, joined by spaces."""
    return " ".join(words[i] for i in rng.integers(0, len(words), n_words))


def speak_utterance(lang: str, rng: np.random.Generator, variants, min_seconds: float = 2.6) -> np.ndarray:
    """A spoken sentence of ``lang`` at 16 kHz by a random speaker variant, rate and pitch.

    Sentences are extended until they last at least ``min_seconds`` of audio.
    """
    from lid_spark.tools.synth.espeak import speak
    from lid_spark.tools.synth.lexicon import vocabulary

    words = vocabulary(lang)
    variant = variants[rng.integers(len(variants))]
    rate, pitch, pitch_range = int(rng.integers(110, 240)), int(rng.integers(20, 81)), int(rng.integers(20, 101))
    pieces, total = [], 0
    while total < min_seconds * SAMPLE_RATE:
        wave = speak(random_sentence(words, rng, int(rng.integers(5, 11))), voice=lang, rate=rate, pitch=pitch,
                     pitch_range=pitch_range, variant=variant, sample_rate=SAMPLE_RATE)
        pieces.append(wave)
        total += wave.size
    return np.concatenate(pieces)


def sing_utterance(lang: str, rng: np.random.Generator, variants, min_seconds: float = 3.0) -> np.ndarray:
    """A *sung* phrase of ``lang``: each word held on a note of a melody.

    Every word is spoken monotone (no intonation) at the pitch of its note, then time-stretched to
    the note's duration (0.35-0.9 s, so vowels are sustained as in singing), with short breaths
    between notes. This keeps the words and voices of the spoken data but changes their phonation,
    rhythm and pitch contour: the shift that makes spoken-LID models weak on singing.
    """
    import librosa

    from lid_spark.tools.synth.espeak import speak
    from lid_spark.tools.synth.lexicon import vocabulary

    words = vocabulary(lang)
    variant = variants[rng.integers(len(variants))]
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    root = int(rng.integers(20, 45))  # espeak-ng pitch units (0-100); 3 units per semitone of the scale
    notes, total = [], 0
    while total < min_seconds * SAMPLE_RATE:
        word = words[rng.integers(len(words))]
        pitch = int(min(100, root + 3 * scale[rng.integers(len(scale))]))
        wave = speak(word, voice=lang, rate=int(rng.integers(90, 140)), pitch=pitch, pitch_range=0,
                     variant=variant, sample_rate=SAMPLE_RATE)
        wave, _ = librosa.effects.trim(wave, top_db=35)
        if wave.size < 400:
            continue
        duration = rng.uniform(0.35, 0.9)
        stretch = max(0.25, min(4.0, wave.size / (duration * SAMPLE_RATE)))
        wave = librosa.effects.time_stretch(wave, rate=stretch)
        gap = np.zeros(int(rng.uniform(0.03, 0.12) * SAMPLE_RATE), dtype=np.float32)
        notes.extend([wave.astype(np.float32), gap])
        total += wave.size + gap.size
    return np.concatenate(notes)


def random_crop(wave: np.ndarray, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A random ``seconds``-long excerpt of ``wave`` (the whole of it when shorter)."""
    length = int(seconds * SAMPLE_RATE)
    if wave.size <= length:
        return wave
    start = int(rng.integers(0, wave.size - length + 1))
    return wave[start:start + length]


def _reverb(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    decay_s = rng.uniform(0.08, 0.5)
    n = int(decay_s * SAMPLE_RATE)
    impulse = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at decay_s
    impulse[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    wet = fftconvolve(wave, impulse)[: wave.size]
    return wet / (np.max(np.abs(wet)) + 1e-9) * np.max(np.abs(wave))


def _filter(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    if rng.random() < 0.5:
        sos = butter(4, rng.uniform(2500, 7000), btype="lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = butter(2, rng.uniform(80, 400), btype="highpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, wave)


def _noise(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(wave.size)
    if rng.random() < 0.5:  # pink-ish: 1/sqrt(f) amplitude
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        noise = np.fft.irfft(spectrum, n=wave.size)
    snr_db = rng.uniform(5, 30)
    power = np.mean(wave ** 2) + 1e-12
    noise *= np.sqrt(power / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
    return wave + noise


def music_bed(rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """``n_samples`` of synthetic accompaniment in a random genre, drawn independently of any language."""
    from lid_spark.tools.synth.music import GENRES, accompaniment, plan_song

    genre = GENRES[sorted(GENRES)[int(rng.integers(len(GENRES)))]]
    song = plan_song(genre, rng, n_samples / SAMPLE_RATE + 0.01)
    return accompaniment(song, genre, rng, SAMPLE_RATE)[:n_samples]


def over_music(wave: np.ndarray, rng: np.random.Generator, separator=None) -> np.ndarray:
    """``wave`` laid over a :func:`music_bed` at a voice level drawn from ``MUSIC_VOICE_LEVEL_DB``.

    With a ``separator`` (:class:`lid_spark.audio.separation.Separator`), its vocal estimate of the
    mix is returned instead: the accompaniment residue and masking artefacts that the pipeline's
    separated vocals carry.
    """
    wave = np.asarray(wave, dtype=np.float32)
    bed = music_bed(rng, wave.size)

    def rms(x):
        active = x[np.abs(x) > 1e-4]
        return float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0

    level_db = rng.uniform(*MUSIC_VOICE_LEVEL_DB)
    mix = wave * np.float32(rms(bed) / max(rms(wave), 1e-6) * 10 ** (level_db / 20)) + bed
    mix = (mix / (np.max(np.abs(mix)) + 1e-9) * 0.9).astype(np.float32)
    return mix if separator is None else separator.separate(mix, SAMPLE_RATE)


def augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random reverberation, band filtering, additive noise (5-30 dB SNR) and gain.

    Parameters
    ----------
    wave : np.ndarray
        Mono 16 kHz samples.
    rng : np.random.Generator

    Returns
    -------
    np.ndarray
        float32, same length.
    """
    out = np.asarray(wave, dtype=np.float64)
    if rng.random() < 0.4:
        out = _reverb(out, rng)
    if rng.random() < 0.5:
        out = _filter(out, rng)
    if rng.random() < 0.7:
        out = _noise(out, rng)
    out = out / (np.max(np.abs(out)) + 1e-9) * rng.uniform(0.05, 0.95)
    return out.astype(np.float32)


def hyperparams_yaml(settings: PretrainSettings, n_languages: int) -> str:
    """The ``hyperparams.yaml`` of the model: speechbrain's lang-id-voxlingua107-ecapa layout."""
    ch = settings.channels
    return f"""\
# Spoken-language identification: ECAPA-TDNN embeddings + x-vector classifier, trained by
# `lid-spark pretrain_spoken_lid` on espeak-ng speech in {n_languages} languages.
# Same layout as speechbrain/lang-id-voxlingua107-ecapa; load with
#   EncoderClassifier.from_hparams(source=<this directory>)

n_mels: {settings.n_mels}
out_n_neurons: {n_languages}
emb_dim: {settings.lin_neurons}

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
    left_frames: 0
    right_frames: 0
    deltas: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [{ch}, {ch}, {ch}, {ch}, {3 * ch}]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 64
    lin_neurons: !ref <emb_dim>

classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, !ref <emb_dim>]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: 256
    out_neurons: !ref <out_n_neurons>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

# Files are found next to this one: embedding_model.ckpt, classifier.ckpt, label_encoder.ckpt.
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
"""


@dataclass
class Corpus:
    """Cached log-mel features of generated utterances (float16, [frames, n_mels]) with labels."""

    features: list
    labels: np.ndarray
    seconds: float


def _fbank(n_mels: int):
    from speechbrain.lobes.features import Fbank

    return Fbank(n_mels=n_mels)


def language_utterances(settings: PretrainSettings, index: int) -> tuple[list, float]:
    """Log-mel features (float16) of the augmented training utterances of language ``index``, and their seconds.

    A ``sung_share`` of them are chanted (:func:`sing_utterance`): VoxLingua107's 6,600 hours of
    YouTube speech hold far more prosodic variety than espeak-ng's read speech, and without any the
    embeddings of a small model carry little language information on singing. A ``music_share``
    are laid over accompaniment (:func:`over_music`), a ``separated_share`` of those separated again.
    """
    import torch

    from lid_spark.audio.separation import SoftMaskSeparator

    separator = SoftMaskSeparator()
    fbank = _fbank(settings.n_mels)
    rng = np.random.default_rng([settings.seed, index, 0])
    lang = settings.languages[index]
    features, seconds = [], 0.0
    for _ in range(settings.utterances_per_language):
        render = sing_utterance if rng.random() < settings.sung_share else speak_utterance
        wave = random_crop(render(lang, rng, TRAIN_VARIANTS), rng, MAX_TRAIN_SECONDS)
        if rng.random() < settings.music_share:
            wave = over_music(wave, rng, separator if rng.random() < settings.separated_share else None)
        wave = augment(wave, rng)
        seconds += wave.size / SAMPLE_RATE
        with torch.no_grad():
            features.append(fbank(torch.from_numpy(wave)[None])[0].to(torch.float16))
    return features, seconds


def build_corpus(settings: PretrainSettings, cache_dir: str | Path | None = None, log=None) -> Corpus:
    """Generate (or read from ``cache_dir``) the augmented training utterances as features."""
    import torch

    from lid_spark.processes import map_in_processes

    log = log or get_logger()
    cache = Path(cache_dir) / f"spoken_lid_train_{settings.data_key()}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        data = torch.load(cache, weights_only=False)
        log.info("training features read from cache %s", cache)
        return Corpus(data["features"], data["labels"], data["seconds"])
    features, labels, seconds = [], [], 0.0
    started = time.perf_counter()
    calls = [(settings, index) for index in range(len(settings.languages))]
    # in language order, whatever the number of workers: the corpus is deterministic
    for index, (feats, secs) in enumerate(map_in_processes(language_utterances, calls, settings.workers)):
        features.extend(feats)
        labels.extend([index] * len(feats))
        seconds += secs
        log.info("generated %s (%d/%d languages, %.0f s of speech, %.0f s)", settings.languages[index],
                 index + 1, len(settings.languages), seconds, time.perf_counter() - started)
    corpus = Corpus(features, np.array(labels), seconds)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"features": features, "labels": corpus.labels, "seconds": seconds}, cache)
    return corpus


HELDOUT_KINDS = ("spoken", "sung", "sung_separated")


def heldout_clips(settings: PretrainSettings, kind: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Held-out clips by unseen speaker variants, with new sentences.

    ``kind``: ``spoken``, ``sung`` (chanted), or ``sung_separated`` (the sung clips laid over music
    and passed through the soft-mask separator, as the pipeline's vocal segments are).
    """
    if kind not in HELDOUT_KINDS:
        raise ParameterError(f"held-out kind must be one of {HELDOUT_KINDS}, got {kind!r}")
    separator = None
    if kind == "sung_separated":
        from lid_spark.audio.separation import SoftMaskSeparator

        separator = SoftMaskSeparator()
    clips, labels = [], []
    for index, lang in enumerate(settings.languages):
        rng = np.random.default_rng([settings.seed, index, 1 if kind == "spoken" else 2])
        music_rng = np.random.default_rng([settings.seed, index, 3])
        for _ in range(settings.eval_utterances):
            wave = speak_utterance(lang, rng, HELDOUT_VARIANTS) if kind == "spoken" else sing_utterance(lang, rng, HELDOUT_VARIANTS)
            wave = wave[: 5 * SAMPLE_RATE]
            if separator is not None:
                wave = over_music(wave, music_rng, separator)
            clips.append((wave / (np.max(np.abs(wave)) + 1e-9) * 0.5).astype(np.float32))
            labels.append(index)
    return clips, np.array(labels)


def _batch(corpus: Corpus, by_lang: list[np.ndarray], rng: np.random.Generator, settings: PretrainSettings):
    """A language-balanced batch of random crops of one random length, with SpecAugment masks."""
    import torch

    length = int(rng.integers(settings.crop_frames[0], settings.crop_frames[1] + 1))
    langs = rng.integers(0, len(by_lang), settings.batch_size)
    rows = []
    for k in langs:
        feats = corpus.features[by_lang[k][rng.integers(len(by_lang[k]))]]
        if feats.shape[0] < length:
            feats = feats.repeat((length // feats.shape[0]) + 1, 1)
        start = int(rng.integers(0, feats.shape[0] - length + 1))
        crop = feats[start:start + length].float().clone()
        if rng.random() < 0.5:  # frequency mask
            f0, width = int(rng.integers(0, crop.shape[1])), int(rng.integers(1, 8))
            crop[:, f0:f0 + width] = crop.mean()
        if rng.random() < 0.5:  # time mask
            t0, width = int(rng.integers(0, length)), int(rng.integers(1, 20))
            crop[t0:t0 + width] = crop.mean()
        rows.append(crop)
    return torch.stack(rows), torch.from_numpy(langs)


def check_init_dir(model_dir: str | Path, languages) -> None:
    """ParameterError unless ``model_dir`` is a model directory trained on exactly ``languages``."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    model_dir = Path(model_dir)
    if not (model_dir / "label_encoder.ckpt").is_file():
        raise ParameterError(f"--init {model_dir} is not a model directory written by pretrain_spoken_lid")
    encoder = CategoricalEncoder()
    encoder.load(model_dir / "label_encoder.ckpt")
    previous = [encoder.ind2lab[i] for i in range(len(encoder))]
    if previous != [language_label(code) for code in languages]:
        raise ParameterError(f"--init model {model_dir} has other languages than spoken_lid_pretrain.languages")


def load_weights(hparams: dict, model_dir: str | Path) -> None:
    """Start from the weights of an earlier model directory (same architecture and languages)."""
    import torch

    model_dir = Path(model_dir)
    for name in ("embedding_model", "classifier"):
        state = torch.load(model_dir / f"{name}.ckpt", map_location="cpu")
        try:
            hparams[name].load_state_dict(state)
        except RuntimeError as exc:
            raise ParameterError(f"--init model {model_dir} has another architecture ({name}): {exc}") from None


def train(settings: PretrainSettings, corpus: Corpus, log=None,
          init_dir: str | Path | None = None) -> tuple[dict, dict]:
    """Train embedding model + classifier on ``corpus``; returns (hparams dict, training summary).

    The learning rate follows a cosine from ``learning_rate`` to 5% of it over the time budget,
    so a run stopped by ``minutes`` still ends annealed. ``init_dir`` continues from the weights
    of an earlier model directory instead of a random start.
    """
    import torch
    from hyperpyyaml import load_hyperpyyaml

    log = log or get_logger()
    torch.manual_seed(settings.seed)
    n_languages = len(settings.languages)
    hparams = load_hyperpyyaml(hyperparams_yaml(settings, n_languages))
    if init_dir is not None:
        check_init_dir(init_dir, settings.languages)
        load_weights(hparams, init_dir)
        log.info("continuing from the weights in %s", init_dir)
    embedding_model, classifier = hparams["embedding_model"], hparams["classifier"]
    norm = hparams["mean_var_norm"]
    params = list(embedding_model.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=1e-4)
    rng = np.random.default_rng([settings.seed, 99])
    by_lang = [np.flatnonzero(corpus.labels == k) for k in range(n_languages)]
    budget = settings.minutes * 60.0
    embedding_model.train()
    classifier.train()
    started = time.perf_counter()
    step, loss_avg, acc_avg = 0, None, None
    while step < settings.max_steps:
        elapsed = time.perf_counter() - started
        if elapsed >= budget:
            break
        lr = settings.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        feats, target = _batch(corpus, by_lang, rng, settings)
        feats = norm(feats, torch.ones(feats.shape[0]))
        log_post = classifier(embedding_model(feats)).squeeze(1)
        loss = torch.nn.functional.nll_loss(log_post, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        step += 1
        acc = float((log_post.argmax(1) == target).float().mean())
        loss_value = loss.item()
        loss_avg = loss_value if loss_avg is None else 0.95 * loss_avg + 0.05 * loss_value
        acc_avg = acc if acc_avg is None else 0.95 * acc_avg + 0.05 * acc
        if step % 25 == 0:
            log.info("step %d  loss %.3f  batch accuracy %.2f  lr %.5f  (%.0f/%.0f s)", step, loss_avg, acc_avg,
                     lr, elapsed, budget)
    embedding_model.eval()
    classifier.eval()
    summary = {"steps": step, "seconds": round(time.perf_counter() - started, 1),
               "final_loss": round(loss_avg or float("nan"), 4),
               "final_batch_accuracy": round(acc_avg or float("nan"), 4)}
    return hparams, summary


def save_model(out_dir: str | Path, settings: PretrainSettings, hparams: dict, float16: bool = True) -> Path:
    """Write the speechbrain model directory: hyperparams.yaml, checkpoints, labels, checksums.json."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*"):
        if stale.is_file() and stale.name in {"hyperparams.yaml", "embedding_model.ckpt", "classifier.ckpt",
                                               "label_encoder.ckpt", "checksums.json", "training.json"}:
            stale.unlink()
    (out / "hyperparams.yaml").write_text(hyperparams_yaml(settings, len(settings.languages)))
    for name in ("embedding_model", "classifier"):
        state = {key: (value.to(torch.float16) if float16 and value.is_floating_point() else value).clone()
                 for key, value in hparams[name].state_dict().items()}
        torch.save(state, out / f"{name}.ckpt")
    encoder = hparams["label_encoder"]
    encoder.update_from_iterable([language_label(code) for code in settings.languages])
    encoder.save(out / "label_encoder.ckpt")
    return out


def accuracy_report(posteriors: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict:
    """Top-1 accuracy over all languages and over our 11 classes (targets + "ot"), per target."""
    from lid_spark.audio.spoken_lid import language_class, target_scores

    predicted = posteriors.argmax(axis=1)
    scores = target_scores(posteriors, labels)
    classes = list(scores)
    predicted_class = np.array(classes)[np.stack([scores[c] for c in classes], axis=1).argmax(axis=1)]
    true_class = np.array([language_class(labels[t]) for t in truth])
    per_target = {}
    for code in TARGET_LANGUAGES:
        rows = true_class == code
        if rows.any():
            per_target[code] = round(float((predicted_class[rows] == code).mean()), 3)
    on_targets = true_class != OTHER_LANGUAGE
    return {"clips": int(truth.size), "accuracy": round(float((predicted == truth).mean()), 4),
            "chance": round(1.0 / len(labels), 4),
            "class_accuracy": round(float((predicted_class == true_class).mean()), 4),
            # Over target-language clips only: "ot" holds most languages, so class_accuracy flatters.
            "target_class_accuracy": round(float((predicted_class[on_targets] == true_class[on_targets]).mean()), 4)
            if on_targets.any() else None,
            "per_target_accuracy": per_target}


def evaluate(model_dir: str | Path, settings: PretrainSettings, log=None) -> dict:
    """Accuracy of a model directory on held-out spoken and sung clips of ``settings.languages``.

    Returns
    -------
    dict
        ``{"heldout_spoken": {...}, "heldout_sung": {...}, "heldout_sung_separated": {...}}``, each
        from :func:`accuracy_report`.
    """
    from lid_spark.audio.spoken_lid import SpokenLID
    from lid_spark.progress import step

    log = log or get_logger()
    lid = SpokenLID.load(str(model_dir), device="cpu")
    report = {}
    for kind in HELDOUT_KINDS:
        with step(f"evaluate on held-out {kind} clips", log):
            clips, truth = heldout_clips(settings, kind)
            _, posteriors = lid.embed(clips, batch_size=16)
            report[f"heldout_{kind}"] = result = accuracy_report(posteriors, truth, lid.languages)
            log.info("held-out %s: accuracy %.3f over %d languages, target-class accuracy %.3f", kind,
                     result["accuracy"], len(lid.languages), result["target_class_accuracy"] or float("nan"))
    return report


def pretrain(settings: PretrainSettings, out_dir: str | Path, cache_dir: str | Path | None = None,
             log=None, init_dir: str | Path | None = None) -> dict:
    """Generate data, train, save to ``out_dir`` and evaluate on held-out spoken and sung clips.

    Parameters
    ----------
    settings : PretrainSettings
    out_dir : str or Path
        Model directory to write (loadable by ``SpokenLID.load(out_dir)``).
    cache_dir : str or Path, optional
        Where generated training features are cached between runs with the same data settings.
    init_dir : str or Path, optional
        A model directory of the same architecture and languages to continue training from.

    Returns
    -------
    dict
        The report (also written to ``out_dir/training.json``).
    """
    import torch

    from lid_spark.audio.spoken_lid import write_checksums
    from lid_spark.progress import step

    log = log or get_logger()
    settings.validate()
    check_languages(settings.languages)
    if init_dir is not None:
        check_init_dir(init_dir, settings.languages)
    torch.set_num_threads(settings.threads)
    with step(f"generate training speech in {len(settings.languages)} languages", log):
        corpus = build_corpus(settings, cache_dir, log)
    with step(f"train ECAPA-TDNN for up to {settings.minutes:g} min", log):
        hparams, summary = train(settings, corpus, log, init_dir=init_dir)
    if init_dir is not None:
        summary["continued_from"] = json.loads((Path(init_dir) / "training.json").read_text()).get("training") \
            if (Path(init_dir) / "training.json").is_file() else str(init_dir)
    with step("save model", log):
        save_model(out_dir, settings, hparams)
    report = {"languages": list(settings.languages), "train_utterances": int(corpus.labels.size),
              "train_hours": round(corpus.seconds / 3600, 3), "training": summary,
              "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "languages"},
              "heldout_variants": list(HELDOUT_VARIANTS)}
    report.update(evaluate(out_dir, settings, log))
    report["model_bytes"] = sum(p.stat().st_size for p in Path(out_dir).iterdir() if p.is_file())
    (Path(out_dir) / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    write_checksums(out_dir)
    return report
