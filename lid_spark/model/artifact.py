"""A trained language classifier: the network plus everything needed to use it, saved and loaded safely.

An artifact directory holds three files:

- ``weights.pt``: the network's ``state_dict`` (``torch.save``), loaded with ``weights_only=True`` so a
  tampered file cannot run code;
- ``meta.json``: languages, thresholds, feature subset, input layout and sizes, fallback vectors,
  input normalisation, model_version, training settings and metrics, and (since lid-spark
  calibrates, :mod:`lid_spark.model.calibration`) the calibration of the scores, the thresholds
  tuned on calibrated scores, the validation predictions the precision targets are read from and
  the distance guard;
- ``SHA256SUMS``: checksums of the two; :meth:`LanguageClassifier.load` refuses a directory whose
  files do not match them.

Example
-------
>>> clf = LanguageClassifier.load("lid-spark-out/models/multimodal")   # doctest: +SKIP
>>> clf.predict_tracks(frame_rows)[["track_id", "language", "confidence"]]   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lid_spark import LANGUAGE_CLASSES
from lid_spark.errors import InputError, ParameterError
from lid_spark.faults import fault_point
from lid_spark.files import replace_directory
from lid_spark.metrics import precision_thresholds
from lid_spark.model.calibration import Calibration, DistanceGuard
from lid_spark.model.features import (
    InputBatch,
    InputLayout,
    ModalityStats,
    available_modalities,
    fan_out,
    song_scores,
    with_vocal_scores,
)
from lid_spark.model.resnet1d import ResNet1D

WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"
CHECKSUM_FILE = "SHA256SUMS"
FORMAT_VERSION = 3   # 2: position encoding (none | ramp | learned) and input_size; 3: vocal_scores, linear_path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} asked for but no CUDA device is available (use auto or cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ParameterError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return torch.device(device)


@dataclass
class LanguageClassifier:
    """A 1D-ResNet over one feature subset, with its input layout, fallbacks and thresholds.

    Attributes
    ----------
    net : the ResNet1D
    subset : feature subset name (``multimodal``, ``audio``, ...)
    layout : InputLayout (modalities, sizes)
    stats : training mean/std per modality (``A`` fallback, noise scale)
    fallback : modality -> ``Z``/``A``: what a missing modality takes at inference
    input_mean, input_std : normalisation of the concatenated vector (fitted on training rows)
    languages : output classes, in order
    thresholds : language -> acceptance threshold tuned for F1 on validation
    model_version : identifies the weights (written into language_tags)
    second_language_min : default minimum score of a reported second language
    vocal_scores : whether a segment's vocals part is its embedding followed by the spoken-LID
        log class scores (:func:`lid_spark.model.features.with_vocal_scores`)
    average_without_timbral : song scores are the mean of the posteriors with the timbral part as
        given and at its fallback (a model trained with timbral replicas knows both; the mean reads
        the vocals more when timbre misleads)
    settings, metrics : how it was trained and how it did (for the record)
    calibration : how raw song scores become the calibrated ones :meth:`predict_tracks` returns
        (None: an artifact saved before calibration; scores stay raw)
    calibrated_thresholds : language -> threshold tuned for F1 on the calibrated validation scores
        (the tagging thresholds when no precision target is set)
    val_predictions : the validation tracks' calibrated predictions, ``{"language", "confidence",
        "label"}`` lists: what a precision target is met on (:meth:`tag_thresholds`)
    distance_guard : the out-of-domain guard (None: not fitted)
    """

    net: ResNet1D
    subset: str
    layout: InputLayout
    stats: dict[str, ModalityStats]
    fallback: dict[str, str]
    input_mean: np.ndarray
    input_std: np.ndarray
    languages: tuple[str, ...] = LANGUAGE_CLASSES
    thresholds: dict[str, float] = field(default_factory=dict)
    model_version: str = ""
    second_language_min: float = 0.25
    vocal_scores: bool = False
    average_without_timbral: bool = False
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    inference_batch: int = 2048
    calibration: Calibration | None = None
    calibrated_thresholds: dict[str, float] = field(default_factory=dict)
    val_predictions: dict[str, list] = field(default_factory=dict)
    distance_guard: DistanceGuard | None = None

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def normalise(self, inputs: np.ndarray) -> np.ndarray:
        return ((inputs - self.input_mean) / self.input_std).astype(np.float32)

    def _forward_rows(self, inputs: np.ndarray, hidden: bool = False) -> np.ndarray:
        self.net.eval()
        out = []
        with torch.no_grad():
            x_all = self.normalise(inputs)
            for start in range(0, len(x_all), self.inference_batch):
                x = torch.from_numpy(x_all[start:start + self.inference_batch]).to(self.device)
                y = self.net.hidden(x) if hidden else self.net.predict_proba(x)
                out.append(y.cpu().numpy().astype(np.float64))
        width = self.net.hidden_size if hidden else len(self.languages)
        return np.concatenate(out) if out else np.zeros((0, width))

    def fan_out(self, pdf: pd.DataFrame, drop: Iterable[str] = (),
                fallback: Mapping[str, str] | None = None) -> InputBatch:
        """The model's input rows for ``pdf`` (missing or dropped modalities at their fallback)."""
        chosen = dict(self.fallback)
        chosen.update(fallback or {})
        if self.vocal_scores and "vocals" in self.layout.modalities:
            pdf = with_vocal_scores(pdf, self.languages)
        return fan_out(pdf, self.layout, self.stats, chosen, drop=[m for m in drop if m in self.layout.modalities])

    def score_tracks(self, pdf: pd.DataFrame, drop: Iterable[str] = (),
                     fallback: Mapping[str, str] | None = None) -> np.ndarray:
        """Song-level posteriors [tracks, languages]: duration-weighted sum of segment posteriors.

        ``drop`` treats modalities as missing for every track; ``fallback`` overrides the inference
        fallback per modality (Table 2's baselines use ``{"consumption": "Z"}`` and ``"A"``). With
        ``average_without_timbral`` the posteriors are averaged with those of the same rows with the
        timbral part at its fallback.
        """
        drop = list(drop)
        batch = self.fan_out(pdf, drop, fallback)
        scores = song_scores(self._forward_rows(batch.inputs), batch, len(pdf))
        if self.average_without_timbral and "timbral" in self.layout.modalities and "timbral" not in drop:
            # the same rows with the timbral part at its fallback (as fan_out with it dropped builds them)
            without = batch.inputs.copy()
            mode = {**self.fallback, **(fallback or {})}["timbral"]
            without[:, self.layout.slices()["timbral"]] = self.stats["timbral"].fallback(mode)
            scores = (scores + song_scores(self._forward_rows(without), batch, len(pdf))) / 2.0
        return scores

    def hidden_tracks(self, pdf: pd.DataFrame) -> np.ndarray:
        """The last hidden layer per track (duration-weighted over segments): Figure 2 (b)/(d)."""
        batch = self.fan_out(pdf)
        return song_scores(self._forward_rows(batch.inputs, hidden=True), batch, len(pdf))

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated song scores (unchanged when the artifact has no calibration)."""
        return scores if self.calibration is None else self.calibration.apply(scores, self.languages)

    def tag_thresholds(self, target_precision: float | Mapping[str, float] | None = None) -> dict[str, float]:
        """Per-language thresholds on the calibrated confidence of the predicted language.

        ``target_precision`` None: the F1 thresholds of the calibrated validation scores (the raw
        ones for an artifact without calibration); a value or a mapping language -> value
        (``tagging.target_precision``): :func:`lid_spark.metrics.precision_thresholds` on the
        validation predictions, so that the tagged validation rows of each language meet it.
        """
        if target_precision is None or self.calibration is None:
            return dict(self.calibrated_thresholds or self.thresholds)
        v = self.val_predictions
        correct = np.asarray(v["language"]) == np.asarray(v["label"])
        return precision_thresholds(v["language"], v["confidence"], correct, self.languages, target_precision)

    def audio_only_languages(self, pdf: pd.DataFrame) -> np.ndarray:
        """The argmax language with consumption treated as missing (its inference fallback)."""
        scores = self.score_tracks(pdf, drop=["consumption"])
        return np.asarray(self.languages)[scores.argmax(axis=1)] if len(pdf) else np.zeros(0, dtype=object)

    def predict_tracks(self, pdf: pd.DataFrame, second_language_min: float | None = None,
                       target_precision: float | Mapping[str, float] | None = None,
                       guard_quantile: float | None = None, check_modalities: bool = False) -> pd.DataFrame:
        """Tag rows of the track feature frame.

        Parameters
        ----------
        pdf : pandas rows with the columns of :func:`lid_spark.model.features.track_feature_frame`
            (track_id, consumption, timbral, seg_embeddings, seg_durations; others ignored)
        second_language_min : report the second-best language when its score is at least this
            (default: the value saved with the model, from ``tagging.second_language_min``)
        target_precision : picks the thresholds (:meth:`tag_thresholds`)
        guard_quantile : compute each track's distance from the training distribution and the limit
            (this quantile of the validation distances); None: no distance
        check_modalities : also score each track that has consumption and audio with consumption
            treated as missing, and report that audio-only language

        Returns
        -------
        DataFrame with one row per input row: track_id, scores (dict language -> calibrated
        probability over ``languages``), language (argmax), confidence (its calibrated
        probability), above_threshold (confidence >= that language's threshold), second_language
        (or None), modalities (list of the modalities actually present: 'consumption', 'timbral',
        'vocals'), distance and distance_limit (None without the guard), audio_language (None when
        not checked or the track lacks consumption or audio).
        """
        if "track_id" not in pdf.columns:
            raise InputError(f"predict_tracks needs a track_id column; got {list(pdf.columns)}")
        minimum = self.second_language_min if second_language_min is None else float(second_language_min)
        thresholds = self.tag_thresholds(target_precision)
        scores = self.calibrate(self.score_tracks(pdf))
        order = np.argsort(-scores, axis=1, kind="stable")
        distances, limit = [None] * len(pdf), None
        if guard_quantile is not None and self.distance_guard is not None and len(pdf):
            distances = self.distance_guard.distances(self.hidden_tracks(pdf)).tolist()
            limit = self.distance_guard.limit(guard_quantile)
        rows = pdf.to_dict("records")
        modalities = [available_modalities(row, self.layout) for row in rows]
        audio_language = [None] * len(pdf)
        if check_modalities and "consumption" in self.layout.modalities and len(self.layout.modalities) > 1:
            both = [i for i, m in enumerate(modalities) if "consumption" in m and len(m) > 1]
            if both:
                for i, lang in zip(both, self.audio_only_languages(pdf.iloc[both])):
                    audio_language[i] = str(lang)
        records = []
        for i, row in enumerate(rows):
            best, second = order[i, 0], order[i, 1]
            language = self.languages[best]
            confidence = float(scores[i, best])
            records.append({
                "track_id": row["track_id"],
                "scores": {lang: float(scores[i, j]) for j, lang in enumerate(self.languages)},
                "language": language,
                "confidence": confidence,
                "above_threshold": bool(confidence >= thresholds.get(language, 0.5)),
                "second_language": self.languages[second] if scores[i, second] >= minimum else None,
                "modalities": modalities[i],
                "distance": distances[i], "distance_limit": limit, "audio_language": audio_language[i],
            })
        return pd.DataFrame.from_records(records, columns=[
            "track_id", "scores", "language", "confidence", "above_threshold", "second_language", "modalities",
            "distance", "distance_limit", "audio_language"])

    # ------------------------------------------------------------------ persistence

    def meta(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "model_version": self.model_version,
            "subset": self.subset,
            "languages": list(self.languages),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "layout": self.layout.to_json(),
            "channels": self.net.channels,
            "position": self.net.position, "input_size": self.net.input_size,
            "linear_path": self.net.linear_path is not None,
            "fallback": dict(self.fallback),
            "fallback_vectors": {m: {"A": self.stats[m].mean.tolist(), "Z": [0.0] * self.layout.dims[m]}
                                 for m in self.layout.modalities},
            "modality_std": {m: self.stats[m].std.tolist() for m in self.layout.modalities},
            "input_mean": self.input_mean.tolist(),
            "input_std": self.input_std.tolist(),
            "second_language_min": self.second_language_min,
            "vocal_scores": self.vocal_scores,
            "average_without_timbral": self.average_without_timbral,
            "settings": self.settings,
            "metrics": self.metrics,
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
            "calibrated_thresholds": {k: float(v) for k, v in self.calibrated_thresholds.items()},
            "val_predictions": self.val_predictions,
            "distance_guard": self.distance_guard.to_json() if self.distance_guard is not None else None,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write weights, meta and checksums to ``directory`` (created, or replaced as a whole).

        The files are written to a temporary sibling directory that is then renamed into place
        (:func:`lid_spark.files.replace_directory`): a reader sees the previous artifact or this
        one, never a mix, even when the writer is killed.
        """
        out = Path(directory)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        with replace_directory(out) as tmp:
            torch.save(state, tmp / WEIGHTS_FILE)
            fault_point("classifier:weights_written")
            with open(tmp / META_FILE, "w", encoding="utf-8") as f:
                json.dump(self.meta(), f, indent=1, sort_keys=True)
            sums = {name: _sha256(tmp / name) for name in (WEIGHTS_FILE, META_FILE)}
            (tmp / CHECKSUM_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sums.items()), encoding="utf-8")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu") -> LanguageClassifier:
        """Read an artifact directory; InputError when a file is missing or fails its checksum."""
        src = Path(directory)
        for name in (WEIGHTS_FILE, META_FILE, CHECKSUM_FILE):
            if not (src / name).is_file():
                raise InputError(f"{src} is not a classifier artifact: {name} is missing")
        expected = {}
        for line in (src / CHECKSUM_FILE).read_text(encoding="utf-8").splitlines():
            if line.strip():
                digest, name = line.split(None, 1)
                expected[name.strip()] = digest
        for name in (WEIGHTS_FILE, META_FILE):
            if expected.get(name) != _sha256(src / name):
                raise InputError(f"{src / name} does not match its checksum in {CHECKSUM_FILE}: "
                                 "the artifact was modified or is incomplete; retrain or copy it again")
        meta = json.loads((src / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{src}: artifact format {meta.get('format_version')} is not {FORMAT_VERSION} "
                             "(retrain it with this version of lid-spark)")
        layout = InputLayout.from_json(meta["layout"])
        net = ResNet1D(len(meta["languages"]), int(meta["channels"]), meta["position"], meta["input_size"],
                       linear_path=bool(meta["linear_path"]))
        try:
            state = torch.load(src / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # code or objects other than tensors: never executed
            raise InputError(f"{src / WEIGHTS_FILE} holds more than tensors and was refused (torch loads "
                             f"weights only): {str(e).splitlines()[0]}") from None
        net.load_state_dict(state)
        net.to(resolve_device(device)).eval()
        stats = {m: ModalityStats(np.asarray(meta["fallback_vectors"][m]["A"], dtype=np.float32),
                                  np.asarray(meta["modality_std"][m], dtype=np.float32))
                 for m in layout.modalities}
        return cls(net=net, subset=meta["subset"], layout=layout, stats=stats, fallback=meta["fallback"],
                   input_mean=np.asarray(meta["input_mean"], dtype=np.float32),
                   input_std=np.asarray(meta["input_std"], dtype=np.float32),
                   languages=tuple(meta["languages"]), thresholds=meta["thresholds"],
                   model_version=meta["model_version"], second_language_min=float(meta["second_language_min"]),
                   vocal_scores=bool(meta["vocal_scores"]),
                   average_without_timbral=bool(meta.get("average_without_timbral", False)), settings=meta["settings"],
                   metrics=meta["metrics"],
                   # absent from artifacts saved before calibration: their scores stay raw
                   calibration=Calibration.from_json(meta["calibration"]) if meta.get("calibration") else None,
                   calibrated_thresholds=meta.get("calibrated_thresholds") or {},
                   val_predictions=meta.get("val_predictions") or {},
                   distance_guard=(DistanceGuard.from_json(meta["distance_guard"]) if meta.get("distance_guard")
                                   else None))
