"""What the pipeline writes: output schemas, status vocabularies and what counts as a missing value.

The input tables (tracks, plays, labels) are the data contract, in :mod:`lid_spark.contract`;
everything the stages and UDFs produce is described here, once. Each schema is a Spark
``StructType``; the column lists the stages select are derived from it, never restated.

=========================  ==================================  =============================
schema                     rows of                             written by
=========================  ==================================  =============================
:data:`EXTRACT_SCHEMA`     the extraction UDF (two kinds)      ``udfs/audio_features.py``
:data:`STAT_SCHEMA`        the audio-file stat UDF             ``udfs/audio_features.py``
:data:`MEL_SCHEMA`         the codebook-fit sampling UDF       ``udfs/audio_features.py``
:data:`AUDIO_STATUS`       table ``audio_status``              stage ``extract_features``
:data:`VOCAL_SEGMENTS`     table ``vocal_segments``            stage ``extract_features``
:data:`TIMBRAL_FEATURES`   table ``timbral_features``          stage ``extract_features``
:data:`EMBEDDINGS_SCHEMA`  table ``consumption_embeddings``    stage ``train_embeddings``
:data:`TAG_SCHEMA`         table ``language_tags``             stage ``tag_catalog``
=========================  ==================================  =============================

Example
-------
>>> TAG_COLUMNS[:3], STATUS_COLUMNS[-1]
(['track_id', 'language', 'confidence'], 'duration_s')
>>> set(RETRY_STATUSES) <= set(STATUSES) and set(FEATURE_STATUSES) <= set(STATUSES)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import types as T

# --- Audio statuses: one per track tried, shared by decoding, the pipeline and the audio_status table.
STATUS_OK = "ok"
STATUS_TRUNCATED = "truncated"      # decoded, but only the first max_seconds (or the part before damage) were kept
STATUS_MISSING = "missing_file"
STATUS_UNREADABLE = "unreadable"
STATUS_EMPTY = "empty"              # a readable file with no samples
STATUS_SILENT = "silent"            # samples, all (near) zero
STATUS_NO_VOCALS = "no_vocals"      # sound, but no segment passed the vocal-activity threshold
STATUS_NO_URI = "no_uri"            # the track has no audio_uri
STATUS_FAILED = "failed"            # an unexpected error in feature extraction (message kept)
STATUS_SEPARATION_FAILED = "separation_failed"  # the separator could not process this track (message kept)
STATUSES = (STATUS_OK, STATUS_TRUNCATED, STATUS_MISSING, STATUS_UNREADABLE, STATUS_EMPTY, STATUS_SILENT,
            STATUS_NO_VOCALS, STATUS_NO_URI, STATUS_SEPARATION_FAILED, STATUS_FAILED)
# Statuses of failures that may pass on another try: extract_features redoes these tracks on a rerun.
RETRY_STATUSES = (STATUS_SEPARATION_FAILED, STATUS_FAILED)
# Statuses whose tracks carry features (segments and/or a timbral vector).
FEATURE_STATUSES = (STATUS_OK, STATUS_TRUNCATED, STATUS_NO_VOCALS)

# --- Tag statuses: every track of the catalog gets one language_tags row with one of these.
TAG_TAGGED = "tagged"                   # the best language is above its threshold and the confidence floor
TAG_LOW_CONFIDENCE = "low_confidence"   # below them: the best guess is kept, flagged
TAG_INSTRUMENTAL = "instrumental"       # the audio was read and holds no vocals (language zxx)
TAG_NO_FEATURES = "no_features"         # neither usable audio nor a consumption embedding (language und)
TAG_STATUSES = (TAG_TAGGED, TAG_LOW_CONFIDENCE, TAG_INSTRUMENTAL, TAG_NO_FEATURES)
# The tags downstream users may rely on (the current_language_tags view).
USABLE_TAG_STATUSES = (TAG_TAGGED, TAG_INSTRUMENTAL)
UNDETERMINED = "und"  # ISO 639-2 "undetermined": the language of a no_features row

# --- The embedded spoken-LID model knows only synthetic speech: what a job says when it scores a
# catalog that is not the synthetic world (lid_spark.contract.is_synthetic_catalog).
PRODUCTION_SPOKEN_LID = "speechbrain/lang-id-voxlingua107-ecapa"
EMBEDDED_ON_REAL_CATALOG = (
    "vocals scored by the embedded spoken-LID model, trained on synthetic speech only: set "
    f"audio.spoken_lid.source={PRODUCTION_SPOKEN_LID} (or a local copy) for real songs")

# --- The extraction UDF: flat rows of two kinds, one track row per input track and one segment row
# per vocal segment; the stage splits them into audio_status, timbral_features and vocal_segments.
TRACK, SEGMENT = "track", "segment"   # values of the ``kind`` column

EXTRACT_SCHEMA = T.StructType([
    T.StructField("kind", T.StringType(), False),
    T.StructField("track_id", T.StringType(), False),
    T.StructField("audio_uri", T.StringType(), True),
    T.StructField("status", T.StringType(), True),
    T.StructField("error", T.StringType(), True),
    T.StructField("vocal_ratio", T.DoubleType(), True),
    T.StructField("duration_s", T.DoubleType(), True),
    T.StructField("n_segments", T.IntegerType(), True),
    T.StructField("timbral", T.ArrayType(T.FloatType()), True),
    T.StructField("seg_idx", T.IntegerType(), True),
    T.StructField("start_s", T.DoubleType(), True),
    T.StructField("end_s", T.DoubleType(), True),
    T.StructField("embedding", T.ArrayType(T.FloatType()), True),
    T.StructField("spoken_lid_scores", T.MapType(T.StringType(), T.FloatType()), True),
])

# The stat pass of extract_features: one row per track with an audio_uri (see AUDIO_STATUS.audio_stat).
STAT_SCHEMA = T.StructType([
    T.StructField("track_id", T.StringType(), False),
    T.StructField("audio_stat", T.StringType(), True),
])

MEL_SCHEMA = T.StructType([
    T.StructField("track_id", T.StringType(), False),
    T.StructField("status", T.StringType(), False),
    T.StructField("error", T.StringType(), True),
    T.StructField("n_frames", T.IntegerType(), False),
    T.StructField("mel", T.ArrayType(T.FloatType()), True),   # n_frames x n_mels, row-major
])

# --- The feature tables: columns of the UDF's rows, plus what the stage stamps on them.
_FEATURE_VERSION = T.StructField("feature_version", T.StringType(), False)
_EXTRACTED_AT = T.StructField("extracted_at", T.TimestampType(), False)
# "<bytes>:<modification stamp>" of the audio file when it was extracted (lid_spark.audio.decode.audio_stat):
# a file rewritten under the same audio_uri is extracted again. Null when the file could not be stat'ed.
_AUDIO_STAT = T.StructField("audio_stat", T.StringType(), True)
# Columns extract_features adds to the UDF's rows (feature_version on every table, extracted_at and
# audio_stat on audio_status).
STAMP_COLUMNS = (_FEATURE_VERSION.name, _EXTRACTED_AT.name, _AUDIO_STAT.name)


def _extracted(*names: str) -> list[T.StructField]:
    return [EXTRACT_SCHEMA[name] for name in names]


AUDIO_STATUS = T.StructType(
    _extracted("track_id", "audio_uri", "status", "error", "vocal_ratio", "n_segments", "duration_s")
    + [_FEATURE_VERSION, _EXTRACTED_AT, _AUDIO_STAT])
VOCAL_SEGMENTS = T.StructType(
    _extracted("track_id", "seg_idx", "start_s", "end_s", "embedding", "spoken_lid_scores") + [_FEATURE_VERSION])
TIMBRAL_FEATURES = T.StructType([
    EXTRACT_SCHEMA["track_id"],
    T.StructField("vector", EXTRACT_SCHEMA["timbral"].dataType, True),   # the UDF's ``timbral`` column
    _FEATURE_VERSION,
])
# The UDF columns the stage selects for audio_status and vocal_segments (before it stamps them).
STATUS_COLUMNS = [name for name in AUDIO_STATUS.fieldNames() if name not in STAMP_COLUMNS]
SEGMENT_COLUMNS = [name for name in VOCAL_SEGMENTS.fieldNames() if name not in STAMP_COLUMNS]

# --- Consumption embeddings (train_embeddings).
EMBEDDINGS_SCHEMA = T.StructType([
    T.StructField("track_id", T.StringType(), False),
    T.StructField("vector", T.ArrayType(T.FloatType(), False), False),
    T.StructField("model_version", T.StringType(), False),
])

# --- Language tags (the tagging UDF's rows, MERGEd into language_tags). All columns nullable.
TAG_SCHEMA = T.StructType([
    T.StructField("track_id", T.StringType(), True),
    T.StructField("language", T.StringType(), True),
    T.StructField("confidence", T.DoubleType(), True),
    T.StructField("scores", T.MapType(T.StringType(), T.DoubleType()), True),
    T.StructField("second_language", T.StringType(), True),
    T.StructField("is_instrumental", T.BooleanType(), True),
    T.StructField("modalities", T.ArrayType(T.StringType()), True),
    T.StructField("status", T.StringType(), True),           # one of TAG_STATUSES
    T.StructField("reason", T.StringType(), True),
    T.StructField("feature_fingerprint", T.LongType(), True),
    T.StructField("model_version", T.StringType(), True),
    T.StructField("tagged_at", T.TimestampType(), True),
])
TAG_COLUMNS = TAG_SCHEMA.fieldNames()

OUTPUT_TABLES = {
    "audio_status": AUDIO_STATUS,
    "vocal_segments": VOCAL_SEGMENTS,
    "timbral_features": TIMBRAL_FEATURES,
    "consumption_embeddings": EMBEDDINGS_SCHEMA,
    "language_tags": TAG_SCHEMA,
}


def is_missing(value, empty: bool = True) -> bool:
    """Whether a cell holds no value: None, NaN, ``pd.NA``/``NaT`` and (unless ``empty=False``) an empty
    sequence, array or mapping.

    pandas gives a null array or map cell as None or NaN depending on the frame, and an empty
    array means the same as a null one to the classifier; this is the one test for both. Strings
    are values, even empty ones.

    Parameters
    ----------
    value : object
        A cell of a pandas frame or a Spark row.
    empty : bool
        Count empty sequences, arrays and mappings as missing (the default); with False only
        null values are.

    Example
    -------
    >>> [is_missing(v) for v in (None, float("nan"), np.float32("nan"), pd.NA, pd.NaT, [], np.zeros(0), {})]
    [True, True, True, True, True, True, True, True]
    >>> [is_missing(v) for v in (0.0, "", [0.0], np.zeros(3), {"en": 1.0}, [[]])]
    [False, False, False, False, False, False]
    >>> is_missing([], empty=False), is_missing(float("nan"), empty=False)
    (False, True)
    """
    if value is None:
        return True
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return bool(pd.isna(value.item()))
    if hasattr(value, "__len__"):
        return empty and len(value) == 0
    return bool(pd.isna(value))
