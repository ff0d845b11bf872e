"""Model inputs: the per-track feature frame (Spark) and the segment fan-out into vectors (numpy).

The **track feature frame** is the contract between the feature tables and the classifier, for
training and for the tagging job alike. :func:`track_feature_frame` returns one row per track:

================  ===========================  ==================================================
column            type                         meaning
================  ===========================  ==================================================
track_id          string                       the track
consumption       array<float>, nullable       consumption embedding; null when the track has none
timbral           array<float>, nullable       timbral codebook histogram; null when none
seg_embeddings    array<array<float>>          spoken-LID embedding per vocal segment, by seg_idx;
                                               empty when the track has no vocal segments
seg_durations     array<double>                end_s - start_s per segment (same order)
seg_spoken_lid    array<map<string,float>>     spoken-LID posteriors per language code, per
                                               segment (same order)
status            string, nullable             audio_status.status ('ok', 'no_vocals', ...);
                                               null when the audio was never processed
vocal_ratio       double, nullable             audio_status.vocal_ratio
================  ===========================  ==================================================

The numpy side turns rows of that frame (as a pandas DataFrame) into the classifier's input: one
vector per vocal segment, the concatenation ``[consumption | timbral | vocals]`` restricted to a
feature subset, song-level parts repeated per segment (the paper's *fan-out*). A missing modality
takes a fallback vector: zeros (``Z``) or the training mean (``A``). With
:func:`with_vocal_scores` a segment's vocals part is its embedding followed by the spoken-LID
model's log class scores.

Example
-------
>>> import numpy as np, pandas as pd
>>> pdf = pd.DataFrame({"track_id": ["t1"], "consumption": [np.ones(2)], "timbral": [None],
...                     "seg_embeddings": [[np.zeros(3), np.ones(3)]], "seg_durations": [[1.0, 3.0]]})
>>> layout = InputLayout.for_subset("multimodal", {"consumption": 2, "timbral": 2, "vocals": 3})
>>> stats = {m: ModalityStats(np.full(d, 0.5), np.ones(d)) for m, d in layout.dims.items()}
>>> batch = fan_out(pdf, layout, stats, fallback={"consumption": "A", "timbral": "A", "vocals": "A"})
>>> batch.inputs.shape, batch.weights.tolist()
((2, 7), [0.25, 0.75])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lid_spark.errors import InputError, ParameterError
from lid_spark.languages import collapse_scores
from lid_spark.schemas import is_missing

MODALITIES = ("consumption", "timbral", "vocals")
# The paper's ablation (Table 1): which modalities each model variant sees, in input order.
SUBSETS = {
    "timbral": ("timbral",),
    "vocals": ("vocals",),
    "consumption": ("consumption",),
    "audio": ("timbral", "vocals"),
    "multimodal": ("consumption", "timbral", "vocals"),
}
FALLBACK_MODES = ("Z", "A")
# Frame columns holding each modality (vocals: one embedding per segment).
_COLUMN = {"consumption": "consumption", "timbral": "timbral", "vocals": "seg_embeddings"}


def subset_modalities(subset: str) -> tuple[str, ...]:
    """The modalities of a feature subset, in input order; ParameterError for an unknown subset."""
    if subset not in SUBSETS:
        raise ParameterError(f"classifier.features must be one of {', '.join(SUBSETS)}, got {subset!r}")
    return SUBSETS[subset]


@dataclass(frozen=True)
class InputLayout:
    """Where each modality sits in the concatenated input vector."""

    modalities: tuple[str, ...]
    dims: dict[str, int]

    @classmethod
    def for_subset(cls, subset: str, dims: Mapping[str, int]) -> InputLayout:
        modalities = subset_modalities(subset)
        missing = [m for m in modalities if not dims.get(m)]
        if missing:
            raise InputError(f"feature subset {subset!r} needs {missing} but no track has them")
        return cls(modalities, {m: int(dims[m]) for m in modalities})

    @property
    def size(self) -> int:
        return sum(self.dims.values())

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for m in self.modalities:
            out[m] = slice(start, start + self.dims[m])
            start += self.dims[m]
        return out

    def to_json(self) -> list[list]:
        return [[m, self.dims[m]] for m in self.modalities]

    @classmethod
    def from_json(cls, items: Iterable) -> InputLayout:
        items = [(str(m), int(d)) for m, d in items]
        return cls(tuple(m for m, _ in items), dict(items))


@dataclass(frozen=True)
class ModalityStats:
    """Training-set mean and standard deviation of one modality (the ``A`` fallback and ``G`` noise scale)."""

    mean: np.ndarray
    std: np.ndarray

    def fallback(self, mode: str) -> np.ndarray:
        if mode == "Z":
            return np.zeros_like(self.mean)
        if mode == "A":
            return self.mean
        raise ParameterError(f"fallback mode must be one of {FALLBACK_MODES}, got {mode!r}")


@dataclass
class InputBatch:
    """Fanned-out inputs: one row per (track, segment), with its track index and duration weight."""

    inputs: np.ndarray       # float32 [rows, layout.size]
    track_index: np.ndarray  # int64 [rows]: position of the row's track in the frame
    weights: np.ndarray      # float64 [rows]: segment duration / track's total (sums to 1 per track)


def _vector(value, dim: int, what: str, track_id) -> np.ndarray | None:
    if is_missing(value):
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.size == 0:
        return None
    if arr.shape != (dim,):
        raise InputError(f"track {track_id}: {what} has {arr.size} values, the model expects {dim} "
                         "(features from another feature/model version?)")
    return arr


def segments_of(row) -> tuple[list, np.ndarray]:
    """A frame row's segment embeddings and durations (empty lists when it has none)."""
    segs = row.get("seg_embeddings")
    if is_missing(segs, empty=False):  # an empty list still has its durations checked
        return [], np.zeros(0)
    segs = list(segs)
    durations = row.get("seg_durations")
    durations = np.ones(len(segs)) if durations is None else np.asarray(list(durations), dtype=np.float64)
    if len(durations) != len(segs):
        raise InputError(f"track {row.get('track_id')}: {len(segs)} segment embeddings but "
                         f"{len(durations)} durations")
    return segs, durations


SCORE_FLOOR = 1e-4   # log scores are floored here: a class the spoken-LID model rules out is not -inf


def map_as_dict(value) -> dict:
    """A map column value as a dict (Arrow gives maps as lists of (key, value) pairs)."""
    if is_missing(value, empty=False):
        return {}
    return value if isinstance(value, dict) else dict(value)


def with_vocal_scores(pdf: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """A copy whose segment vectors are ``[embedding | log spoken-LID score of each class]``.

    Beyond the paper: on a few hundred labelled tracks a 1D-ResNet learns less from the segment
    embedding alone than the pretrained spoken-LID head already gives; with the head's scores
    beside the embedding it can use both (docs/model.md, "Vocal scores").

    Parameters
    ----------
    pdf : track feature frame rows (seg_embeddings and, per segment, seg_spoken_lid maps)
    classes : the classes whose scores are appended, in this order: a target takes its language's
        score (0 when the map lacks it), ``ot`` the mass of every other language
        (:func:`lid_spark.languages.collapse_scores`); a segment without a map gets the uniform
        distribution

    Returns
    -------
    DataFrame like ``pdf`` with ``seg_embeddings`` extended by ``len(classes)`` values per segment.

    Example
    -------
    >>> pdf = pd.DataFrame({"seg_embeddings": [[np.zeros(2)]], "seg_spoken_lid": [[{"en": 1.0}]]})
    >>> [round(float(v), 2) for v in with_vocal_scores(pdf, ("en", "fr"))["seg_embeddings"][0][0]]
    [0.0, 0.0, 0.0, -9.21]
    """
    uniform = np.full(len(classes), 1.0 / len(classes))
    extended = []
    for row in pdf.to_dict("records"):
        segs, _ = segments_of(row)
        maps = row.get("seg_spoken_lid")
        maps = [] if is_missing(maps) else list(maps)
        out = []
        for j, seg in enumerate(segs):
            scores = map_as_dict(maps[j]) if j < len(maps) else {}
            probs = np.array(collapse_scores(scores, classes)) if scores else uniform
            out.append(np.concatenate([np.asarray(seg, dtype=np.float32),
                                       np.log(np.maximum(probs, SCORE_FLOOR)).astype(np.float32)]))
        extended.append(out)
    result = pdf.copy()
    result["seg_embeddings"] = extended
    return result


def available_modalities(row, layout: InputLayout) -> list[str]:
    """The modalities of ``layout`` that this frame row actually has (not null / not empty)."""
    present = []
    for m in layout.modalities:
        if m == "vocals":
            if len(segments_of(row)[0]) > 0:
                present.append(m)
        elif _vector(row.get(_COLUMN[m]), layout.dims[m], m, row.get("track_id")) is not None:
            present.append(m)
    return present


def modality_dims(pdf: pd.DataFrame) -> dict[str, int]:
    """The vector size of each modality, from the first track that has it (0 when none has it)."""
    dims = {}
    for m in MODALITIES:
        dims[m] = 0
        if _COLUMN[m] not in pdf.columns:
            continue
        for value in pdf[_COLUMN[m]]:
            if m == "vocals":
                if value is not None and len(value) > 0:
                    dims[m] = len(value[0])
                    break
            elif value is not None and len(value) > 0:
                dims[m] = len(value)
                break
    return dims


def fit_modality_stats(pdf: pd.DataFrame, layout: InputLayout) -> dict[str, ModalityStats]:
    """Mean and std per modality over the tracks (vocals: over all segments) that have it.

    Parameters
    ----------
    pdf : track feature frame rows (training tracks)
    layout : the input layout

    Returns
    -------
    dict modality -> ModalityStats (std floored at 1e-6)
    """
    stats = {}
    for m in layout.modalities:
        rows = []
        for row in pdf.to_dict("records"):
            if m == "vocals":
                rows.extend(np.asarray(s, dtype=np.float64) for s in segments_of(row)[0])
            else:
                v = _vector(row.get(_COLUMN[m]), layout.dims[m], m, row.get("track_id"))
                if v is not None:
                    rows.append(v.astype(np.float64))
        if not rows:
            raise InputError(f"no training track has {m} features: cannot train a model that uses them")
        mat = np.stack(rows)
        stats[m] = ModalityStats(mat.mean(axis=0).astype(np.float32),
                                 np.maximum(mat.std(axis=0), 1e-6).astype(np.float32))
    return stats


def fan_out(pdf: pd.DataFrame, layout: InputLayout, stats: Mapping[str, ModalityStats],
            fallback: Mapping[str, str], drop: Iterable[str] = (), noise_scale: float = 0.0,
            rng: np.random.Generator | None = None) -> InputBatch:
    """Build the classifier inputs of each track, one row per vocal segment.

    Parameters
    ----------
    pdf : rows of the track feature frame
    layout : which modalities, in which order, with which sizes
    stats : training statistics per modality (for the ``A`` fallback and the noise scale)
    fallback : modality -> ``"Z"`` or ``"A"``: the value a missing modality takes
    drop : modalities to treat as missing for every track (the missing-modality replicas and
        the Table 2 test set)
    noise_scale : when > 0, Gaussian noise of ``noise_scale * std`` is added to every fallback
        vector used (the paper's ``+G``, training only)
    rng : generator for the noise

    Returns
    -------
    InputBatch. A track whose vocals are used but missing (or dropped) gets one pseudo-segment
    with the vocal part at its fallback; without vocals in the layout, one row per track.
    """
    drop = set(drop)
    unknown = drop - set(MODALITIES)
    if unknown:
        raise ParameterError(f"cannot drop unknown modalities {sorted(unknown)}; known: {MODALITIES}")
    if noise_scale > 0 and rng is None:
        raise ParameterError("noise_scale > 0 needs an rng")
    slices = layout.slices()
    fallback_vectors = {m: stats[m].fallback(fallback[m]) for m in layout.modalities}

    def fill(m: str) -> np.ndarray:
        vec = fallback_vectors[m]
        if noise_scale > 0:
            vec = vec + rng.normal(0.0, 1.0, vec.shape).astype(np.float32) * noise_scale * stats[m].std
        return vec

    blocks, track_index, weights = [], [], []
    for i, row in enumerate(pdf.to_dict("records")):
        track_id = row.get("track_id")
        song = np.empty(layout.size, dtype=np.float32)
        for m in layout.modalities:
            if m == "vocals":
                continue
            vec = None if m in drop else _vector(row.get(_COLUMN[m]), layout.dims[m], m, track_id)
            song[slices[m]] = fill(m) if vec is None else vec
        segs, durations = segments_of(row) if "vocals" in layout.modalities and "vocals" not in drop else ([], None)
        if segs:
            rows = np.repeat(song[None, :], len(segs), axis=0)
            for j, seg in enumerate(segs):
                rows[j, slices["vocals"]] = _vector(seg, layout.dims["vocals"], "a segment embedding", track_id)
            total = float(durations.sum())
            w = durations / total if total > 0 else np.full(len(segs), 1.0 / len(segs))
        else:
            if "vocals" in layout.modalities:
                song[slices["vocals"]] = fill("vocals")
            rows, w = song[None, :], np.ones(1)
        blocks.append(rows)
        track_index.append(np.full(len(rows), i, dtype=np.int64))
        weights.append(w)
    if not blocks:
        return InputBatch(np.zeros((0, layout.size), np.float32), np.zeros(0, np.int64), np.zeros(0))
    return InputBatch(np.concatenate(blocks).astype(np.float32), np.concatenate(track_index),
                      np.concatenate(weights))


def song_scores(segment_scores: np.ndarray, batch: InputBatch, n_tracks: int) -> np.ndarray:
    """Song-level scores: the duration-weighted sum of each track's segment scores.

    Parameters
    ----------
    segment_scores : [rows, classes] posteriors per fanned-out row
    batch : the InputBatch the rows came from (weights sum to 1 per track)
    n_tracks : number of tracks in the frame

    Returns
    -------
    [n_tracks, classes] array
    """
    out = np.zeros((n_tracks, segment_scores.shape[1]), dtype=np.float64)
    np.add.at(out, batch.track_index, segment_scores * batch.weights[:, None])
    return out


# ---------------------------------------------------------------- Spark side


def track_feature_frame(spark, cfg, track_ids_df=None):
    """One row per track with every modality, in the layout documented at the top of this module.

    Parameters
    ----------
    spark : SparkSession
    cfg : Config (table names under ``tables``)
    track_ids_df : DataFrame with a ``track_id`` column: the tracks wanted (deduplicated). None:
        the tracks of ``inputs.tracks`` when set, else every track in any feature table.

    Returns
    -------
    Spark DataFrame, exactly one row per requested track. A feature table that does not exist yet
    counts as empty (its modality is null for every track).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from lid_spark.tables import dedupe_latest, read_input, read_table, resolve_table, table_exists

    def load(name: str, columns: list[str]):
        ref = resolve_table(cfg, name)
        if not table_exists(spark, ref):
            return None
        df = read_table(spark, ref)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(f"table {ref} lacks column(s) {missing}; it has {df.columns}")
        return df.select(*columns)

    consumption = load("consumption_embeddings", ["track_id", "vector"])
    timbral = load("timbral_features", ["track_id", "vector"])
    segments = load("vocal_segments", ["track_id", "seg_idx", "start_s", "end_s", "embedding", "spoken_lid_scores"])
    status = load("audio_status", ["track_id", "status", "vocal_ratio"])

    if track_ids_df is not None:
        if "track_id" not in track_ids_df.columns:
            raise InputError(f"track_ids_df needs a track_id column; it has {track_ids_df.columns}")
        base = track_ids_df.select(F.col("track_id").cast("string")).distinct()
    elif cfg.inputs.tracks:
        base = read_input(spark, cfg, "tracks").select("track_id").distinct()
    else:
        ids = [df.select("track_id") for df in (consumption, timbral, segments, status) if df is not None]
        if not ids:
            raise InputError("no feature tables exist yet and inputs.tracks is not set: nothing to read")
        base = ids[0]
        for other in ids[1:]:
            base = base.unionByName(other)
        base = base.distinct()
    base = base.filter(F.col("track_id").isNotNull())

    vec = T.ArrayType(T.FloatType())
    frame = base
    for name, df in (("consumption", consumption), ("timbral", timbral)):
        if df is None:
            frame = frame.withColumn(name, F.lit(None).cast(vec))
        else:
            df = dedupe_latest(df, ["track_id"], None).select("track_id", F.col("vector").cast(vec).alias(name))
            frame = frame.join(df, "track_id", "left")

    if segments is None:
        frame = (frame.withColumn("seg_embeddings", F.array().cast(T.ArrayType(vec)))
                 .withColumn("seg_durations", F.array().cast(T.ArrayType(T.DoubleType())))
                 .withColumn("seg_spoken_lid", F.array().cast(T.ArrayType(T.MapType(T.StringType(), T.FloatType())))))
    else:
        segs = dedupe_latest(segments, ["track_id", "seg_idx"], None)
        # Order segments by seg_idx (the struct holds a map, which Spark cannot compare whole).
        by_index = lambda a, b: (  # noqa: E731
            F.when(a["seg_idx"] < b["seg_idx"], -1).when(a["seg_idx"] > b["seg_idx"], 1).otherwise(0))
        grouped = segs.groupBy("track_id").agg(F.array_sort(F.collect_list(F.struct(
            F.col("seg_idx").cast("int").alias("seg_idx"),
            F.col("embedding").cast(vec).alias("embedding"),
            (F.col("end_s") - F.col("start_s")).cast("double").alias("duration"),
            F.col("spoken_lid_scores").cast(T.MapType(T.StringType(), T.FloatType())).alias("lid"),
        )), by_index).alias("segs"))
        grouped = grouped.select(
            "track_id",
            F.transform("segs", lambda s: s["embedding"]).alias("seg_embeddings"),
            F.transform("segs", lambda s: s["duration"]).alias("seg_durations"),
            F.transform("segs", lambda s: s["lid"]).alias("seg_spoken_lid"),
        )
        frame = frame.join(grouped, "track_id", "left")
        for name in ("seg_embeddings", "seg_durations", "seg_spoken_lid"):
            frame = frame.withColumn(name, F.coalesce(F.col(name), F.array().cast(frame.schema[name].dataType)))

    if status is None:
        frame = (frame.withColumn("status", F.lit(None).cast("string"))
                 .withColumn("vocal_ratio", F.lit(None).cast("double")))
    else:
        st = dedupe_latest(status, ["track_id"], None).select(
            "track_id", F.col("status").cast("string"), F.col("vocal_ratio").cast("double"))
        frame = frame.join(st, "track_id", "left")
    return frame.select("track_id", "consumption", "timbral", "seg_embeddings", "seg_durations",
                        "seg_spoken_lid", "status", "vocal_ratio")
