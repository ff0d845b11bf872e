"""Training the language classifier as in the paper (section 4.2), plus the artist-level split.

- Artist-level split (70/15/15 by default): every artist's tracks fall in one split, chosen by a
  seeded SHA-256 hash of the artist id, stratified by the artist's main language.
- Segment fan-out: one training row per vocal segment, song-level features and label repeated
  (``classifier.segments_per_track`` caps the rows per track to bound CPU time; 0 keeps all).
- Missing-modality augmentation: for every training track with a consumption embedding, replicas
  with consumption replaced by the fallback (``Z`` zeros / ``A`` training mean, ``+G`` with
  Gaussian noise) — the paper's Table 2; and, beyond the paper, one replica per track with the
  audio part (timbral and vocals) at its training mean, for tracks whose audio failed or has no
  vocals, and replicas (one per segment) with the timbral part at its training mean, so that a
  fused model does not lean on timbre, which tells artists and productions apart more than
  languages, and learns the vocals as well as the vocals model does; with consumption
  augmentation these come once more without consumption, for the same reason when it is missing.
- The validation loss covers the same replicas (``validate_replicas``).
- Adam (lr 1e-3; weight decay 0.03 by default: the paper's 1e-3 overfits a few hundred tracks),
  batch 64, up to 50 epochs, learning rate reduced on validation-loss plateaus, early stop on it
  (best weights kept); each song weighs 1 in the loss (``weigh_segments``); deterministic under a
  seed.
- Per-language acceptance thresholds tuned for F1 on the validation songs.
- Beyond the paper: the song scores' calibration (temperature scaling, or per-language isotonic
  maps when every class has ``classifier.isotonic_min_positives`` validation songs), the F1
  thresholds of the calibrated scores, the calibrated validation predictions (what
  ``tagging.target_precision`` is met on) and the distance guard (the training songs' hidden-layer
  distribution), all fitted on the training and validation songs and saved in the artifact
  (:mod:`lid_spark.model.calibration`).

Example
-------
>>> settings = TrainSettings(subset="audio", epochs=5)            # doctest: +SKIP
>>> clf = train_model(train_rows, val_rows, settings)              # doctest: +SKIP
>>> clf.save("models/audio")                                       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import torch

from lid_spark import LANGUAGE_CLASSES
from lid_spark.errors import InputError, ParameterError
from lid_spark.metrics import average_precision, tune_thresholds
from lid_spark.model.artifact import LanguageClassifier, resolve_device
from lid_spark.model.calibration import CALIBRATION_VERSION, fit_calibration, fit_distance_guard
from lid_spark.model.features import (
    InputBatch,
    InputLayout,
    fan_out,
    fit_modality_stats,
    modality_dims,
    segments_of,
    subset_modalities,
    with_vocal_scores,
)
from lid_spark.model.resnet1d import ResNet1D, check_position
from lid_spark.progress import get_logger
from lid_spark.schemas import is_missing

AUGMENTATIONS = ("none", "Z", "A", "Z+G", "A+G")
SPLITS = ("train", "val", "test")


def parse_augmentation(text: str) -> tuple[str | None, bool]:
    """``"A+G"`` -> ``("A", True)``; ``"none"`` -> ``(None, False)``."""
    if text not in AUGMENTATIONS:
        raise ParameterError(f"classifier.augment_missing_consumption must be one of {AUGMENTATIONS}, got {text!r}")
    if text == "none":
        return None, False
    mode, _, noise = text.partition("+")
    return mode, noise == "G"


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a training run (the ``classifier`` config section)."""

    subset: str = "multimodal"
    channels: int = 16
    position: str = "learned"
    linear_path: bool = True
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.03
    patience: int = 6
    lr_patience: int = 2
    lr_factor: float = 0.5
    seed: int = 17
    augment_missing_consumption: str = "A"
    augment_missing_audio: bool = True
    augment_missing_timbral: bool = True
    validate_replicas: bool = True
    average_without_timbral: bool = True
    noise_scale: float = 0.5
    segments_per_track: int = 4
    vocal_scores: bool = True
    weigh_segments: bool = True
    device: str = "auto"
    torch_threads: int = 1
    model_version: str = "lid-v1"
    second_language_min: float = 0.25
    isotonic_min_positives: int = 50

    def __post_init__(self):
        subset_modalities(self.subset)
        parse_augmentation(self.augment_missing_consumption)
        check_position(self.position)
        for name in ("channels", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ParameterError(f"classifier.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("patience", "lr_patience", "segments_per_track", "torch_threads"):
            if getattr(self, name) < 0:
                raise ParameterError(f"classifier.{name} must be >= 0, got {getattr(self, name)}")
        if not (0 < self.lr_factor < 1):
            raise ParameterError(f"classifier.lr_factor must be in (0, 1), got {self.lr_factor}")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.noise_scale < 0:
            raise ParameterError("classifier.learning_rate must be > 0, weight_decay and noise_scale >= 0")

    @classmethod
    def from_config(cls, cfg, **overrides) -> TrainSettings:
        """Settings from ``cfg.classifier`` (and ``tagging.second_language_min``), with overrides."""
        c = cfg.classifier
        values = {f.name: c[f.name] for f in fields(cls) if f.name in c and f.name != "subset"}
        values["subset"] = c["features"]
        values["second_language_min"] = float(cfg.tagging.second_language_min)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def inference_fallback(self) -> dict[str, str]:
        """Missing consumption takes the augmentation's fallback (A when not augmented); audio takes A."""
        mode, _ = parse_augmentation(self.augment_missing_consumption)
        return {"consumption": mode or "A", "timbral": "A", "vocals": "A"}


# ---------------------------------------------------------------- split


def _artist_hash(seed: int, artist: str) -> str:
    return hashlib.sha256(f"{seed}/{artist}".encode()).hexdigest()


def artist_split(tracks: pd.DataFrame, fractions: Sequence[float] = (0.70, 0.15, 0.15), seed: int = 0) -> pd.Series:
    """Assign every track to train/val/test so that no artist spans two splits.

    Parameters
    ----------
    tracks : columns track_id, artist_id (null: the track is its own artist), language
    fractions : target shares of tracks in train, val, test (sum 1)
    seed : the hash seed; the same seed and artists give the same split on any machine

    Returns
    -------
    Series of "train"/"val"/"test", aligned with ``tracks.index``. Artists are stratified by their
    most frequent language and walked in hash order; each goes to the split its cumulative track
    midpoint falls in, so every language is split about 70/15/15 as far as its artists allow.
    """
    fractions = [float(f) for f in fractions]
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ParameterError(f"classifier.split must be three non-negative fractions summing to 1, got {fractions}")
    for column in ("track_id", "artist_id", "language"):
        if column not in tracks.columns:
            raise InputError(f"artist_split needs column {column!r}; got {list(tracks.columns)}")
    artist = tracks["artist_id"].where(tracks["artist_id"].notna(), "track:" + tracks["track_id"].astype(str))
    artist = artist.astype(str)
    per_artist = pd.DataFrame({"artist": artist, "language": tracks["language"].astype(str)})
    main_language = (per_artist.groupby(["artist", "language"]).size().reset_index(name="n")
                     .sort_values(["artist", "n", "language"], ascending=[True, False, True])
                     .drop_duplicates("artist").set_index("artist")["language"])
    sizes = per_artist.groupby("artist").size()
    bounds = np.cumsum(fractions)[:2]
    assignment = {}
    for _, artists in main_language.groupby(main_language):
        ordered = sorted(artists.index, key=lambda a: _artist_hash(seed, a))
        total = float(sum(sizes[a] for a in ordered))
        cumulative = 0.0
        for a in ordered:
            midpoint = (cumulative + sizes[a] / 2.0) / total
            assignment[a] = SPLITS[int(np.searchsorted(bounds, midpoint, side="right"))]
            cumulative += sizes[a]
    return artist.map(assignment).rename("split")


# ---------------------------------------------------------------- training inputs


def limit_segments(pdf: pd.DataFrame, max_segments: int, rng: np.random.Generator) -> pd.DataFrame:
    """A copy where tracks with more than ``max_segments`` vocal segments keep a random subset of them."""
    if max_segments <= 0:
        return pdf
    out = pdf.copy()
    embeddings, durations = [], []
    for row in pdf.to_dict("records"):
        segs, durs = segments_of(row)
        if len(segs) > max_segments:
            keep = np.sort(rng.choice(len(segs), size=max_segments, replace=False))
            segs, durs = [segs[k] for k in keep], durs[keep]
        embeddings.append(list(segs))
        durations.append(list(durs))
    out["seg_embeddings"] = embeddings
    out["seg_durations"] = durations
    return out


def _has(pdf: pd.DataFrame, column: str) -> np.ndarray:
    return pdf[column].map(lambda v: not is_missing(v)).to_numpy()


def has_timbral_replicas(settings: TrainSettings, layout: InputLayout) -> bool:
    """Whether a model trains on replicas without timbre: it reads timbre with another modality."""
    return settings.augment_missing_timbral and "timbral" in layout.modalities and len(layout.modalities) > 1


def training_inputs(pdf: pd.DataFrame, label_index: np.ndarray, layout: InputLayout, stats, settings: TrainSettings,
                    rng: np.random.Generator) -> tuple[InputBatch, np.ndarray, dict[str, int]]:
    """Fanned-out training rows with the missing-modality replicas.

    Parameters
    ----------
    pdf : training tracks (track feature frame rows)
    label_index : class index per track
    layout, stats : the model's input layout and training statistics
    settings : which augmentations to apply
    rng : generator for segment sampling and noise

    Returns
    -------
    (rows as an InputBatch, labels [rows], counts of rows per kind: original, no_consumption,
    no_audio, no_timbral). A row's weight is its segment's share of the track's vocal duration:
    each copy of a track weighs 1 in all; ``track_index`` points into ``pdf``.
    """
    fallback = settings.inference_fallback
    limited = limit_segments(pdf, settings.segments_per_track, rng)
    parts = [fan_out(limited, layout, stats, fallback)]
    index_maps = [np.arange(len(pdf))]
    counts = {"original": len(parts[0].inputs), "no_consumption": 0, "no_audio": 0, "no_timbral": 0,
              "no_consumption_timbral": 0}
    with_timbral = (np.flatnonzero(_has(pdf, "timbral")) if has_timbral_replicas(settings, layout)
                    else np.zeros(0, np.int64))
    if len(with_timbral):
        replica = fan_out(limited.iloc[with_timbral], layout, stats, fallback, drop=["timbral"])
        parts.append(replica)
        index_maps.append(with_timbral)
        counts["no_timbral"] = len(replica.inputs)
    multimodal = "consumption" in layout.modalities and len(layout.modalities) > 1
    if multimodal:
        with_consumption = np.flatnonzero(_has(pdf, "consumption"))
        mode, noisy = parse_augmentation(settings.augment_missing_consumption)
        if mode is not None and len(with_consumption):
            chosen = {**fallback, "consumption": mode}
            replica = fan_out(limited.iloc[with_consumption], layout, stats, chosen, drop=["consumption"],
                              noise_scale=settings.noise_scale if noisy else 0.0, rng=rng)
            parts.append(replica)
            index_maps.append(with_consumption)
            counts["no_consumption"] = len(replica.inputs)
            # Without consumption the model is an audio model and must not lean on timbre there
            # either: the timbral replicas above all keep their consumption.
            both = np.intersect1d(with_consumption, with_timbral)
            if len(both):
                replica = fan_out(limited.iloc[both], layout, stats, chosen, drop=["consumption", "timbral"],
                                  noise_scale=settings.noise_scale if noisy else 0.0, rng=rng)
                parts.append(replica)
                index_maps.append(both)
                counts["no_consumption_timbral"] = len(replica.inputs)
        if settings.augment_missing_audio and len(with_consumption):
            replica = fan_out(limited.iloc[with_consumption], layout, stats, fallback, drop=["timbral", "vocals"])
            parts.append(replica)
            index_maps.append(with_consumption)
            counts["no_audio"] = len(replica.inputs)
    track_index = np.concatenate([m[p.track_index] for p, m in zip(parts, index_maps)])
    rows = InputBatch(np.concatenate([p.inputs for p in parts]), track_index,
                      np.concatenate([p.weights for p in parts]))
    return rows, label_index[track_index], counts


def _label_index(pdf: pd.DataFrame, languages: Sequence[str]) -> np.ndarray:
    index = {lang: i for i, lang in enumerate(languages)}
    unknown = sorted(set(pdf["language"]) - set(index))
    if unknown:
        raise InputError(f"labels {unknown} are not classes of the model ({', '.join(languages)})")
    return pdf["language"].map(index).to_numpy(dtype=np.int64)


def _weights_digest(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:10]


def data_fingerprint(*frames: pd.DataFrame) -> str:
    """A digest of what a model was trained and validated on: the tracks, their labels and every
    feature value (features re-extracted or a codebook refitted on the same tracks change it)."""
    digest = hashlib.sha256()
    for pdf in frames:
        columns = sorted(c for c in pdf.columns if c != "track_id")
        rows = pdf.assign(_key=pdf["track_id"].astype(str)).sort_values("_key", kind="stable")
        for key, values in zip(rows["_key"], rows[columns].itertuples(index=False, name=None)):
            digest.update(f"{key}\n".encode())
            for column, value in zip(columns, values):
                digest.update(f"{column}=".encode())
                _digest_value(digest, value)
        digest.update(b"--\n")
    return digest.hexdigest()[:16]


def _digest_value(digest, value) -> None:
    if isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"a{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple, np.ndarray)):  # an object array (Arrow's nested lists) too
        digest.update(f"l{len(value)}[".encode())
        for item in value:
            _digest_value(digest, item)
        digest.update(b"]")
    elif isinstance(value, dict):
        digest.update(f"d{len(value)}{{".encode())
        for k in sorted(value, key=str):
            digest.update(f"{k}:".encode())
            _digest_value(digest, value[k])
        digest.update(b"}")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def train_model(train_pdf: pd.DataFrame, val_pdf: pd.DataFrame, settings: TrainSettings,
                languages: Sequence[str] = LANGUAGE_CLASSES) -> LanguageClassifier:
    """Train a LanguageClassifier on labelled rows of the track feature frame.

    Parameters
    ----------
    train_pdf, val_pdf : track feature frame rows plus a ``language`` column (validation drives
        the learning-rate schedule, early stopping and the thresholds)
    settings : TrainSettings
    languages : output classes: the target languages then ``ot`` (the artifact records them, and
        tagging and evaluation read them from it)

    Returns
    -------
    LanguageClassifier with tuned thresholds and ``metrics`` (epochs, best validation loss and
    mAP, row counts).
    """
    log = get_logger(__name__)
    if len(train_pdf) == 0 or len(val_pdf) == 0:
        raise InputError(f"training needs tracks in train and val splits; got {len(train_pdf)} and {len(val_pdf)}")
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = resolve_device(settings.device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)

    vocal_scores = settings.vocal_scores and "vocals" in subset_modalities(settings.subset)
    # the vocals part as the model reads it (validation goes through clf.fan_out, which does the same)
    prepared = with_vocal_scores(train_pdf, tuple(languages)) if vocal_scores else train_pdf
    dims = modality_dims(prepared)
    layout = InputLayout.for_subset(settings.subset, dims)
    stats = fit_modality_stats(prepared, layout)
    train_rows, labels, counts = training_inputs(prepared, _label_index(train_pdf, languages), layout, stats,
                                                 settings, rng)
    base = train_rows.inputs[:counts["original"]].astype(np.float64)
    input_mean = base.mean(axis=0).astype(np.float32)
    input_std = np.maximum(base.std(axis=0), 1e-6).astype(np.float32)

    net = ResNet1D(len(languages), settings.channels, settings.position, layout.size,
                   linear_path=settings.linear_path).to(device)
    clf = LanguageClassifier(net=net, subset=settings.subset, layout=layout, stats=stats,
                             fallback=settings.inference_fallback, input_mean=input_mean, input_std=input_std,
                             languages=tuple(languages), second_language_min=settings.second_language_min,
                             vocal_scores=vocal_scores, settings=settings.to_dict(),
                             average_without_timbral=(settings.average_without_timbral
                                                      and has_timbral_replicas(settings, layout)))
    val_labels = _label_index(val_pdf, languages)
    if settings.validate_replicas:
        # The validation loss (early stop, learning-rate schedule) covers the same missing-modality
        # replicas as training: on complete rows alone consumption makes it converge before the
        # audio part has learned what the replicas ask of it.
        prepared_val = with_vocal_scores(val_pdf, tuple(languages)) if vocal_scores else val_pdf
        val_rows, val_row_labels, _ = training_inputs(prepared_val, val_labels, layout, stats, settings,
                                                      np.random.default_rng(settings.seed + 1))
    else:
        val_rows = clf.fan_out(val_pdf)
        val_row_labels = val_labels[val_rows.track_index]
    x_train = torch.from_numpy(clf.normalise(train_rows.inputs)).to(device)
    y_train = torch.from_numpy(labels).to(device)
    x_val = torch.from_numpy(clf.normalise(val_rows.inputs)).to(device)
    y_val = torch.from_numpy(val_row_labels).to(device)
    # Each song weighs 1 in the loss, split over its segments by duration as its song-level score
    # is; unweighted, a song's song-level features count once per segment and outweigh its vocals.
    w_train = torch.from_numpy(
        train_rows.weights if settings.weigh_segments else np.ones(len(y_train))).float().to(device)
    w_val = torch.from_numpy(val_rows.weights if settings.weigh_segments else np.ones(len(y_val))).float().to(device)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")

    def weighted_loss_sum(rows, x, target, weight):
        return (loss_fn(net(x[rows]), target[rows]) * weight[rows]).sum()

    optimizer = torch.optim.Adam(net.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=settings.lr_factor,
                                                           patience=settings.lr_patience)
    generator = torch.Generator().manual_seed(settings.seed)
    best_loss, best_state, best_epoch, stale = math.inf, copy.deepcopy(net.state_dict()), 0, 0
    epochs_run = 0
    for epoch in range(1, settings.epochs + 1):
        net.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        for start in range(0, len(order), settings.batch_size):
            idx = order[start:start + settings.batch_size]
            if len(idx) < 2:  # batch norm cannot train on a single row
                continue
            optimizer.zero_grad()
            loss = weighted_loss_sum(idx, x_train, y_train, w_train) / w_train[idx].sum()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            chunks = [slice(s, s + 2048) for s in range(0, len(x_val), 2048)]
            val_loss = (sum(weighted_loss_sum(c, x_val, y_val, w_val).item() for c in chunks)
                        / max(float(w_val.sum()), 1e-12))
        scheduler.step(val_loss)
        epochs_run = epoch
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
            if stale > settings.patience:
                break
    net.load_state_dict(best_state)
    net.eval()

    val_scores = clf.score_tracks(val_pdf)
    clf.thresholds = tune_thresholds(val_pdf["language"].to_numpy(), val_scores, languages)
    val_aps = [average_precision(val_labels == j, val_scores[:, j]) for j in range(len(languages))]
    fit_confidence(clf, train_pdf, val_pdf, val_scores, val_labels, settings.isotonic_min_positives)
    clf.metrics = {
        "epochs_run": epochs_run, "best_epoch": best_epoch, "best_val_loss": best_loss,
        "val_map": float(np.nanmean(val_aps)) if not np.all(np.isnan(val_aps)) else None,
        "train_tracks": len(train_pdf), "val_tracks": len(val_pdf),
        "train_rows": int(len(y_train)), **{f"rows_{k}": v for k, v in counts.items()},
        "data_fingerprint": data_fingerprint(train_pdf, val_pdf),
    }
    clf.model_version = f"{settings.model_version}-{settings.subset}-{_weights_digest(net)}"
    log.info("trained %s: %d epochs (best %d), val loss %.4f, val mAP %s, %d rows",
             settings.subset, epochs_run, best_epoch, best_loss, clf.metrics["val_map"], len(y_train))
    return clf


def fit_confidence(clf: LanguageClassifier, train_pdf: pd.DataFrame, val_pdf: pd.DataFrame, val_scores: np.ndarray,
                   val_labels: np.ndarray, isotonic_min_positives: int = 50) -> None:
    """Fit ``clf``'s calibration, calibrated thresholds, validation predictions and distance guard in place.

    ``val_scores``: the raw song scores of ``val_pdf``; ``val_labels``: their class indices.
    """
    languages = tuple(clf.languages)
    clf.calibration = fit_calibration(val_scores, val_labels, languages, min_positives=isotonic_min_positives)
    calibrated = clf.calibrate(val_scores)
    clf.calibrated_thresholds = tune_thresholds(val_pdf["language"].to_numpy(), calibrated, languages)
    best = calibrated.argmax(axis=1)
    clf.val_predictions = {"language": [languages[j] for j in best],
                           "confidence": calibrated[np.arange(len(best)), best].tolist(),
                           "label": [str(v) for v in val_pdf["language"]]}
    clf.distance_guard = fit_distance_guard(clf.hidden_tracks(train_pdf), clf.hidden_tracks(val_pdf))


# Settings that change where a run executes but not what it learns, and those that change only the
# calibration fitted after training (a saved model is recalibrated for them, not retrained).
_PLACEMENT = ("device", "torch_threads")
_CALIBRATION_ONLY = ("isotonic_min_positives",)


def train_or_load(train_pdf: pd.DataFrame, val_pdf: pd.DataFrame, settings: TrainSettings, directory,
                  reuse: bool = True, languages: Sequence[str] = LANGUAGE_CLASSES) -> tuple[LanguageClassifier, bool]:
    """The model for these settings, classes and data: loaded from ``directory`` when it holds one
    trained with the same settings and classes on the same tracks, labels and feature values (and
    ``reuse``), else trained and saved there.

    Returns
    -------
    (classifier, trained): trained is False when the saved artifact was reused.
    """
    from pathlib import Path

    from lid_spark.model.artifact import META_FILE

    directory = Path(directory)
    if reuse and (directory / META_FILE).is_file():
        saved = LanguageClassifier.load(directory, device=settings.device)
        ignored = _PLACEMENT + _CALIBRATION_ONLY
        wanted = {k: v for k, v in settings.to_dict().items() if k not in ignored}
        have = {k: v for k, v in saved.settings.items() if k not in ignored}
        if (have == wanted and tuple(saved.languages) == tuple(languages)
                and saved.metrics.get("data_fingerprint") == data_fingerprint(train_pdf, val_pdf)):
            stale = (saved.calibration is None or saved.calibration.version != CALIBRATION_VERSION
                     or any(saved.settings.get(k) != getattr(settings, k) for k in _CALIBRATION_ONLY))
            if stale:
                # saved before calibration, by an older calibration or with other calibration settings:
                # fit it on the same tracks
                saved.settings = {**saved.settings, **{k: getattr(settings, k) for k in _CALIBRATION_ONLY}}
                fit_confidence(saved, train_pdf, val_pdf, saved.score_tracks(val_pdf),
                               _label_index(val_pdf, saved.languages), settings.isotonic_min_positives)
                saved.save(directory)
                get_logger(__name__).info("calibrated %s (%s) without retraining it", directory,
                                          saved.model_version)
            get_logger(__name__).info("reusing %s (%s)", directory, saved.model_version)
            return saved, False
    clf = train_model(train_pdf, val_pdf, settings, languages)
    clf.save(directory)
    return clf, True
