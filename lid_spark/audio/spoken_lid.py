"""Spoken-language embeddings and posteriors from a speechbrain ECAPA-TDNN language-ID model.

The model is loaded by speechbrain itself (``EncoderClassifier.from_hparams``) from one of three
sources: ``"embedded"`` (the small model this package ships, trained by ``lid-spark
pretrain_spoken_lid`` on espeak-ng speech), a local directory laid out like a speechbrain model
repository (e.g. a copy of ``speechbrain/lang-id-voxlingua107-ecapa``), or a hub id, fetched by
speechbrain when the machine is online.

Example
-------
>>> lid = SpokenLID.load("embedded", device="cpu")
>>> emb, post = lid.embed([np.zeros(16000, dtype=np.float32)])
>>> emb.shape == (1, lid.embedding_dim), post.shape == (1, len(lid.languages))
(True, True)
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from lid_spark import LANGUAGE_CLASSES, OTHER_LANGUAGE, TARGET_LANGUAGES
from lid_spark.errors import ParameterError
from lid_spark.languages import class_of, normalise_language
from lid_spark.package_data import package_path

EMBEDDED_MODEL_DIR = package_path("models", "spoken_lid_ecapa")   # extracted first from a zipped wheel
CHECKSUMS_FILE = "checksums.json"
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
# Shorter clips give ECAPA too few frames for its convolutions; they are zero-padded to this.
_MIN_SAMPLES = 1600


class ModelLoadError(RuntimeError):
    """The spoken-LID model could not be loaded: missing, altered, or unreachable."""


def resolve_device(device: str = "auto") -> str:
    """Torch device name for ``device``.

    Parameters
    ----------
    device : str
        ``"auto"`` (the first visible CUDA device when there is one, else ``"cpu"``; Spark sets
        ``CUDA_VISIBLE_DEVICES`` for a task given a GPU, so "first visible" is the task's GPU),
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda:N"``.

    Example
    -------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if not isinstance(device, str) or not (device == "auto" or _DEVICE.match(device)):
        raise ParameterError(f"audio.spoken_lid.device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError(f"audio.spoken_lid.device is {device!r} but no CUDA device is visible")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ParameterError(f"audio.spoken_lid.device is {device!r} but only "
                                 f"{torch.cuda.device_count()} CUDA device(s) are visible")
        return f"cuda:{index}"
    return "cpu"


def file_checksums(directory: str | Path) -> dict[str, str]:
    """sha256 of every model file in ``directory`` (all regular files but ``checksums.json``)."""
    directory = Path(directory)
    sums = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name != CHECKSUMS_FILE:
            sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def write_checksums(directory: str | Path) -> Path:
    """Write ``checksums.json`` (sha256 per file) into a model directory; returns its path."""
    target = Path(directory) / CHECKSUMS_FILE
    target.write_text(json.dumps(file_checksums(directory), indent=2, sort_keys=True) + "\n")
    return target


def verify_checksums(directory: str | Path) -> None:
    """Refuse a model directory whose files differ from its ``checksums.json``.

    Raises
    ------
    ModelLoadError
        When ``checksums.json`` is missing, or a listed file is missing or changed.
    """
    directory = Path(directory)
    listing = directory / CHECKSUMS_FILE
    if not listing.is_file():
        raise ModelLoadError(f"{directory} has no {CHECKSUMS_FILE}: cannot verify the model files")
    expected = json.loads(listing.read_text())
    actual = file_checksums(directory)
    for name, digest in sorted(expected.items()):
        if name not in actual:
            raise ModelLoadError(f"model file {name} listed in {listing} is missing")
        if actual[name] != digest:
            raise ModelLoadError(f"model file {directory / name} does not match its sha256 in {listing}: "
                                 "it was changed or corrupted; reinstall the package or retrain with "
                                 "lid-spark pretrain_spoken_lid")


def language_code(label: str) -> str:
    """ISO code of a classifier label as written: ``"en: English"`` -> ``"en"``, ``"cmn"`` -> ``"cmn"``."""
    return label.split(":", 1)[0].strip().lower()


def label_language(label: str) -> str:
    """The normalised code of a classifier label (:func:`lid_spark.languages.normalise_language`):
    ``"pt: Portuguese"`` -> ``"pt"``, ``"cmn"`` -> ``"zh"``; a label it cannot read keeps its own code.

    Example
    -------
    >>> label_language("pt: Portuguese"), label_language("cmn"), label_language("eng"), label_language("xyz1")
    ('pt', 'zh', 'en', 'xyz1')
    """
    return normalise_language(label)[0] or language_code(label)


def language_class(label: str, targets=TARGET_LANGUAGES) -> str:
    """The class of a classifier label among ``targets`` (the label's language, else ``"ot"``).

    Example
    -------
    >>> language_class("pa: Panjabi"), language_class("ru: Russian"), language_class("ru: Russian", ("ru", "pt"))
    ('pa', 'ot', 'ru')
    """
    return class_of(label_language(label), targets)


def language_scores(posteriors: np.ndarray, languages: list[str]) -> dict[str, np.ndarray]:
    """Spoken-LID posteriors per language code: what ``vocal_segments.spoken_lid_scores`` holds.

    Every label of the model is read as a language code (:func:`label_language`); labels of one
    language (``zh`` and ``cmn``) add up. The classes of a catalog are chosen later, at training
    (:func:`lid_spark.languages.collapse_scores`), so one extraction serves any choice of targets.

    Example
    -------
    >>> s = language_scores(np.array([[0.7, 0.2, 0.1]]), ["en: English", "zh: Chinese", "cmn"])
    >>> {k: round(float(v[0]), 2) for k, v in s.items()}
    {'en': 0.7, 'zh': 0.3}
    """
    posteriors = np.asarray(posteriors, dtype=np.float32)
    if posteriors.ndim != 2 or posteriors.shape[1] != len(languages):
        raise ParameterError(f"posteriors must be [n, {len(languages)}], got shape {posteriors.shape}")
    codes = [label_language(label) for label in languages]
    columns = np.array(codes)
    return {code: posteriors[:, columns == code].sum(axis=1).astype(np.float32) for code in dict.fromkeys(codes)}


def target_scores(posteriors: np.ndarray, languages: list[str],
                  classes=LANGUAGE_CLASSES) -> dict[str, np.ndarray]:
    """Collapse spoken-LID posteriors onto classes (the paper's "spoken-LID applied directly").

    Parameters
    ----------
    posteriors : np.ndarray [n, len(languages)]
        Class probabilities from :meth:`SpokenLID.embed`.
    languages : list of str
        The classifier's labels, in column order.
    classes : sequence of str
        The target languages then ``"ot"`` (default: the paper's).

    Returns
    -------
    dict
        One float32 array [n] per class; ``"ot"`` is the mass of every language that is not a
        target. A target the spoken-LID model does not know scores 0.

    Example
    -------
    >>> s = target_scores(np.array([[0.7, 0.2, 0.1]]), ["en: English", "ru: Russian", "fi: Finnish"])
    >>> round(float(s["en"][0]), 2), round(float(s["ot"][0]), 2), float(s["ta"][0])
    (0.7, 0.3, 0.0)
    """
    posteriors = np.asarray(posteriors, dtype=np.float32)
    if posteriors.ndim != 2 or posteriors.shape[1] != len(languages):
        raise ParameterError(f"posteriors must be [n, {len(languages)}], got shape {posteriors.shape}")
    targets = [c for c in classes if c != OTHER_LANGUAGE]
    found = np.array([language_class(label, targets) for label in languages])
    return {cls: posteriors[:, found == cls].sum(axis=1).astype(np.float32) for cls in classes}


def length_buckets(lengths: list[int], batch_size: int, max_ratio: float) -> list[list[int]]:
    """Group indices into batches of similar length (padding changes ECAPA embeddings).

    Indices are sorted by length; a batch closes when it holds ``batch_size`` items or when the
    next item is more than ``max_ratio`` times as long as the batch's shortest.

    Example
    -------
    >>> length_buckets([100, 5000, 110, 5100, 120], batch_size=8, max_ratio=1.25)
    [[0, 2, 4], [1, 3]]
    """
    if batch_size < 1:
        raise ParameterError(f"audio.spoken_lid.batch_size must be >= 1, got {batch_size}")
    if max_ratio < 1.0:
        raise ParameterError(f"audio.spoken_lid.bucket_ratio must be >= 1, got {max_ratio}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or lengths[i] > max_ratio * max(lengths[current[0]], 1)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _local_overrides(directory: Path) -> dict:
    """hyperparams.yaml files copied from the hub name their repo in ``pretrained_path``:
    point it at the local copy so that nothing is fetched."""
    text = (directory / "hyperparams.yaml").read_text(encoding="utf-8")
    return {"pretrained_path": str(directory)} if re.search(r"^pretrained_path\s*:", text, re.M) else {}


class SpokenLID:
    """A loaded spoken-language-ID model: per-clip embeddings and language posteriors.

    Use :meth:`load`; the constructor wraps an already loaded speechbrain ``EncoderClassifier``.
    """

    sample_rate = 16000

    def __init__(self, classifier, device: str, source: str):
        self.classifier = classifier
        self.device = device
        self.source = source
        encoder = classifier.hparams.label_encoder
        self.languages: list[str] = [encoder.ind2lab[i] for i in range(len(encoder.ind2lab))]
        import torch

        with torch.no_grad():
            probe = classifier.encode_batch(torch.zeros(1, self.sample_rate, device=device))
            n_outputs = int(classifier.mods.classifier(probe).shape[-1])
        if n_outputs != len(self.languages):
            raise ModelLoadError(f"spoken-LID model {source!r} has {n_outputs} outputs but "
                                 f"{len(self.languages)} labels in its label encoder")
        encoder.expect_len(n_outputs)
        self.embedding_dim: int = int(probe.shape[-1])

    @classmethod
    def load(cls, source: str = "embedded", device: str = "auto", savedir: str | None = None) -> SpokenLID:
        """Load a speechbrain ECAPA language-ID model.

        Parameters
        ----------
        source : str
            ``"embedded"`` (the model shipped with lid-spark; its files are checked against
            ``checksums.json``), a local directory with ``hyperparams.yaml`` and checkpoints, or a
            hub id such as ``"speechbrain/lang-id-voxlingua107-ecapa"`` (fetched by speechbrain).
        device : str
            ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :func:`resolve_device`).
        savedir : str, optional
            Where speechbrain puts fetched files of a hub model (its cache when None).

        Returns
        -------
        SpokenLID

        Raises
        ------
        ParameterError
            Bad device, or a source that is neither "embedded", a model directory nor a hub id.
        ModelLoadError
            Altered embedded files, or a hub model that cannot be fetched (e.g. offline).
        """
        from speechbrain.inference.classifiers import EncoderClassifier

        run_device = resolve_device(device)
        run_opts = {"device": run_device}
        if not isinstance(source, str) or not source:
            raise ParameterError(f"audio.spoken_lid.source must be 'embedded', a directory or a hub id, got {source!r}")
        if source == "embedded":
            directory = EMBEDDED_MODEL_DIR
            if not (directory / "hyperparams.yaml").is_file():
                raise ModelLoadError(f"the embedded spoken-LID model is missing from {directory}; "
                                     "retrain it with lid-spark pretrain_spoken_lid")
            verify_checksums(directory)
        elif Path(source).expanduser().is_dir():
            directory = Path(source).expanduser().resolve()
            if not (directory / "hyperparams.yaml").is_file():
                raise ParameterError(f"audio.spoken_lid.source {source!r} is a directory without hyperparams.yaml")
            if (directory / CHECKSUMS_FILE).is_file():
                verify_checksums(directory)
        else:
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
                raise ParameterError(f"audio.spoken_lid.source {source!r} is neither 'embedded', an existing "
                                     "directory, nor a hub id like speechbrain/lang-id-voxlingua107-ecapa")
            try:
                classifier = EncoderClassifier.from_hparams(source=source, savedir=savedir, run_opts=run_opts)
            except Exception as exc:  # speechbrain/hub raise many types: name the cause once, clearly
                raise ModelLoadError(
                    f"could not fetch spoken-LID model {source!r} ({type(exc).__name__}: {exc}). "
                    "Without network access, copy the model repository to a directory and set "
                    "audio.spoken_lid.source to it, or use source=embedded") from exc
            if classifier is None:
                raise ModelLoadError(f"speechbrain returned no model for {source!r}")
            return cls(classifier, run_device, source)
        classifier = EncoderClassifier.from_hparams(source=str(directory), savedir=savedir, run_opts=run_opts,
                                                    overrides=_local_overrides(directory))
        return cls(classifier, run_device, source)

    def embed(self, waveforms: list[np.ndarray], batch_size: int = 16,
              bucket_ratio: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and language posteriors of mono 16 kHz clips.

        Clips are sorted by length and batched with others of similar length (at most
        ``bucket_ratio`` times longer than the batch's shortest), padded minimally (mirrored) and
        passed with their relative lengths, because padding changes ECAPA embeddings.

        Parameters
        ----------
        waveforms : list of np.ndarray
            1-D float arrays at :attr:`sample_rate`; clips shorter than 0.1 s are zero-padded to it.
        batch_size : int
            Most clips per forward pass.
        bucket_ratio : float
            Longest / shortest clip length allowed within a batch (>= 1; 1 batches equal lengths only).

        Returns
        -------
        embeddings : np.ndarray [n, embedding_dim] float32
        posteriors : np.ndarray [n, len(languages)] float32
            Rows in input order; posteriors sum to 1.
        """
        import torch

        clips = []
        for i, wave in enumerate(waveforms):
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1 or wave.size == 0:
                raise ParameterError(f"waveform {i} must be a non-empty 1-D array, got shape {wave.shape}")
            if not np.all(np.isfinite(wave)):
                raise ParameterError(f"waveform {i} has NaN or infinite samples")
            if wave.size < _MIN_SAMPLES:
                wave = np.pad(wave, (0, _MIN_SAMPLES - wave.size))
            clips.append(wave)
        n = len(clips)
        embeddings = np.zeros((n, self.embedding_dim), dtype=np.float32)
        posteriors = np.zeros((n, len(self.languages)), dtype=np.float32)
        for batch in length_buckets([c.size for c in clips], batch_size, bucket_ratio):
            longest = max(clips[i].size for i in batch)
            # Padding is masked by the relative lengths, but the last frames' filterbank windows and
            # convolutions still see it: a mirrored continuation disturbs them less than silence.
            padded = np.stack([np.pad(clips[i], (0, longest - clips[i].size), mode="reflect") for i in batch])
            lens = torch.tensor([clips[i].size / longest for i in batch], dtype=torch.float32)
            with torch.no_grad():
                wavs = torch.from_numpy(padded).to(self.device)
                emb = self.classifier.encode_batch(wavs, lens.to(self.device))
                log_post = self.classifier.mods.classifier(emb).squeeze(1)
            embeddings[batch] = emb.squeeze(1).float().cpu().numpy()
            posteriors[batch] = log_post.float().exp().cpu().numpy()
        return embeddings, posteriors
