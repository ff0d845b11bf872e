"""Reliability: bad input, injected faults, reruns and resource bounds, with real Spark, Delta and models.

One small dirty catalog goes through extract_features -> train_classifier -> tag_catalog. Every
track row ends up with an audio_status row and a language_tags row (tagged, or listed with its
reason), every label row is counted under one reason, and the counts reach the jobs' report JSON.
Then faults are injected into the same pipeline: a Python worker killed inside the feature UDF, a
tagging job killed during its MERGE and rerun, two tagging runs at once, a tampered model. Last,
memory and pair bounds on a one-hour file and a 10^5-play session.

Bad inputs covered elsewhere (not repeated here): corrupt/zero-length/silent/long/odd-rate audio,
missing files and null audio_uri (test_extract_features.py); null user/track/ts, unknown tracks,
duplicate plays, clock skew, bot sessions, session caps (test_cooccurrence.py); checksum of the
classifier artifact and of the codebook (test_model.py, test_audio.py); concurrent MERGEs of
merge_upsert (test_tables.py); a track without features (test_tag_catalog.py).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from pyspark.sql import functions as F

from lid_spark.audio.timbral import Codebook, codebook_dir, log_mel
from lid_spark.errors import InputError
from lid_spark.tables import read_table, resolve_table, write_table
from tests._feature_world import SCHEMAS, make_world
from tests.audio_samples import SR, song

ROOT = Path(__file__).resolve().parents[1]
TRACKS_SCHEMA = SCHEMAS["tracks"]

# The dirty catalog: (track_id, audio_uri, duration_s, expected audio status, words of the error).
CATALOG = [
    ("good", "good.flac", 6.0, "ok", None),
    ("duration_negative", "good.flac", -5.0, "ok", None),
    ("duration_nan", "good.flac", float("nan"), "ok", None),
    ("duration_1e9", "good.flac", 1e9, "ok", None),
    ("cut_download", "cut.flac", 6.0, "truncated", "damaged after"),
    ("broken_header", "broken_header.wav", None, "unreadable", "cannot decode"),
    ("a_directory", "folder.flac", None, "unreadable", "is a directory"),
    ("s3_no_bucket", "s3://no-such-bucket/x.flac", None, "unreadable", "s3://no-such-bucket/x.flac"),
    ("http_unreachable", "http://127.0.0.1:9/x.flac", None, "unreadable", "http://127.0.0.1:9/x.flac"),
    ("unknown_scheme", "nosuchproto://x/y.flac", None, "unreadable", "Protocol not known"),
    ("malformed_uri", "::bad", None, "missing_file", "no such file"),
    ("blank_uri", "   ", None, "no_uri", "no audio_uri"),
]
EXPECTED_STATUS = {t: s for t, _, _, s, _ in CATALOG} | {"conflicting_rows": "ok"}
# Rows with data problems on top of the cases above: no id (null, and blank: a blank id names no
# track), an exact duplicate, one id with two uris.
EXTRA_ROWS = [(None, "a0", "good.flac", 6.0), (" ", "a0", "good.flac", 6.0), ("good", "a0", "good.flac", 6.0),
              ("conflicting_rows", "a0", "missing.flac", 6.0), ("conflicting_rows", "a0", "good.flac", 6.0)]

SETTINGS = ["spark.shuffle_partitions=2", "audio.max_seconds=30.0", "audio.decode_block_seconds=1.0",
            "audio.timbral.n_mels=32", "audio.timbral.codebook_size=4", "audio.udf.tracks_per_batch=2",
            "audio.udf.partitions=2", "classifier.features=timbral", "classifier.channels=8",
            "classifier.torch_threads=1", "classifier.epochs=8", "classifier.segments_per_track=2",
            "evaluation.mlflow.enabled=false"]


def _settings(root: Path, tables: str = "tables", report: str = "report", **inputs) -> list[str]:
    paths = {"inputs.tracks": root / "tracks", "inputs.audio_root": root / "audio",
             **{f"inputs.{k}": v for k, v in inputs.items()}}
    return SETTINGS + [f"{k}={v}" for k, v in paths.items()] + [
        f"tables.location={root / tables}", f"output.report_dir={root / report}",
        f"output.models_dir={root / 'models'}"]


def _report(root: Path, name: str, report: str = "report") -> dict:
    return json.loads((root / report / f"{name}.json").read_text())


def _subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _job_process(job: str, settings: list[str], **env: str) -> subprocess.Popen:
    """The job as spark-submit would run it (``python jobs/<job>.py``), in its own local Spark."""
    own = ["spark.master=local[2,3]", "spark.driver_memory=1g", "spark.log_level=WARN"]
    return subprocess.Popen([sys.executable, str(ROOT / "jobs" / f"{job}.py"), *settings, *own], cwd=ROOT,
                            env=_subprocess_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.fixture(scope="module")
def catalog(spark, tmp_path_factory):
    """The dirty catalog's audio files, codebook and tracks table; returns its root directory."""
    root = tmp_path_factory.mktemp("reliability")
    audio = root / "audio"
    audio.mkdir()
    mix, _ = song(6.0, "en", seed=1)
    sf.write(audio / "good.flac", mix, SR)
    whole = (audio / "good.flac").read_bytes()
    (audio / "cut.flac").write_bytes(whole[: len(whole) * 2 // 3])   # a download cut short
    sf.write(audio / "tone.wav", mix[:SR], SR)
    (audio / "broken_header.wav").write_bytes((audio / "tone.wav").read_bytes()[:20])
    (audio / "folder.flac").mkdir()
    cfg = _cfg(root)
    Codebook.fit([log_mel(mix, SR, 32, 0.064)], SR, n_mels=32, codebook_size=4, seed=0).save(codebook_dir(cfg))
    rows = [(t, "a0", uri, duration) for t, uri, duration, _, _ in CATALOG] + EXTRA_ROWS
    # Through Spark: a pandas NaN would become a null in Parquet, and the catalog must hold a real NaN.
    spark.createDataFrame(rows, TRACKS_SCHEMA).write.parquet(str(root / "tracks"))
    return root


@pytest.fixture(scope="module")
def extracted(spark, catalog):
    from lid_spark.jobs import extract_features

    assert extract_features.main(_settings(catalog)) == 0
    return _report(catalog, "extract_features")


@pytest.fixture(scope="module")
def training_world(spark, catalog, extracted):
    """Planted training tracks with timbral vectors of the codebook's size, and a dirty labels table."""
    world = make_world(tracks_per_language=9, seed=5)
    root = catalog
    write_table(spark.createDataFrame(world["timbral"], SCHEMAS["timbral"]),
                resolve_table(_cfg(root), "timbral_features"), mode="append")
    world["tracks"].to_parquet(root / "training_tracks")
    labels = world["labels"]
    first = labels.iloc[:5].itertuples(index=False)
    t0, t1, t2, t3, t4 = (row.track_id for row in first)
    other = next(lang for lang in ("en", "fr") if lang != labels.iloc[4].language)
    bad = [(None, "en"), ("  ", "fr"),                                 # without track id
           (t0, "xx"), (t1, "zxx"), (t2, None),                      # unreadable, not a language, missing
           (t3, labels.iloc[3].language),                            # an exact duplicate row
           (t4, other),                                              # t4 labelled twice: ambiguous
           ("ghost_track", "en")]                                    # a track not in the catalog
    dirty = pd.concat([labels, pd.DataFrame(bad, columns=["track_id", "language"])], ignore_index=True)
    dirty.to_parquet(root / "labels")
    labelled = set(labels.track_id) - {t4}
    return {"planted_labels": len(labels), "labels_in": len(dirty),
            "without_features": len(labelled - set(world["timbral"].track_id)) + 1}  # + the ghost track


@pytest.fixture(scope="module")
def trained(spark, catalog, training_world):
    from lid_spark.jobs import train_classifier

    settings = _settings(catalog, tracks=catalog / "training_tracks", labels=catalog / "labels")
    assert train_classifier.main(settings) == 0
    return _report(catalog, "train_classifier")


@pytest.fixture(scope="module")
def tagged(spark, catalog, trained):
    from lid_spark.jobs import tag_catalog

    # Tables before the first tagging run, for the fault tests that replay it.
    shutil.copytree(catalog / "tables", catalog / "tables_before_tagging")
    assert tag_catalog.main(_settings(catalog)) == 0
    return _report(catalog, "tagging"), _tags(spark, catalog / "tables")


def _tags(spark, location: Path) -> dict[str, dict]:
    """language_tags as {track_id: row without tagged_at}; asserts one row per track."""
    rows = [r.asDict() for r in spark.read.format("delta").load(str(location / "language_tags")).collect()]
    ids = [r["track_id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate rows in language_tags"
    return {r["track_id"]: {k: v for k, v in r.items() if k != "tagged_at"} for r in rows}


def _assert_same_tags(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for track_id, row in want.items():
        other = got[track_id]
        assert {k: other[k] for k in ("language", "status", "reason", "is_instrumental", "model_version",
                                      "feature_fingerprint")} == \
               {k: row[k] for k in ("language", "status", "reason", "is_instrumental", "model_version",
                                    "feature_fingerprint")}, track_id
        assert other["confidence"] == pytest.approx(row["confidence"], abs=1e-6), track_id


# ------------------------------------------------------------------ bad input: the data


@pytest.mark.slow
def test_every_dirty_track_row_gets_one_status_with_its_reason(spark, catalog, extracted):
    status = read_table(spark, resolve_table(_cfg(catalog), "audio_status")).toPandas().set_index("track_id")
    assert not status.index.duplicated().any()
    assert status["status"].to_dict() == EXPECTED_STATUS
    for track_id, _, _, _, words in CATALOG:
        if words:
            assert words in status.loc[track_id, "error"], track_id
    # The catalog's duration_s is never trusted: the duration is read from the file.
    assert status.loc[["duration_negative", "duration_nan", "duration_1e9"], "duration_s"].tolist() == \
        pytest.approx([6.0] * 3, abs=0.01)
    assert status.loc["cut_download", "duration_s"] == pytest.approx(6.0, abs=0.01)
    rows_in = len(CATALOG) + len(EXTRA_ROWS)
    assert extracted["tracks_in"] == rows_in
    assert extracted["tracks_without_id"] == 2 and extracted["duplicate_track_rows"] == 2
    assert extracted["tracks_distinct"] == len(EXPECTED_STATUS) == extracted["tracks_extracted"]
    assert extracted["tracks_duration_implausible"] == 3
    # Count in = count out: every distinct track has a status; rows without id and duplicates are counted.
    assert sum(extracted["statuses"].values()) == len(status) == len(EXPECTED_STATUS)
    assert rows_in == len(status) + extracted["tracks_without_id"] + extracted["duplicate_track_rows"]
    expected_counts = pd.Series(EXPECTED_STATUS).value_counts().to_dict()
    assert extracted["statuses"] == expected_counts


def _cfg(root: Path, **inputs):
    from lid_spark.config import load_config

    return load_config(overrides=_settings(root, **inputs))


@pytest.mark.slow
def test_every_label_row_is_used_or_counted_under_one_reason(training_world, trained):
    data = trained["data"]
    n = training_world["planted_labels"]
    assert data["labels_in"] == training_world["labels_in"] == n + 8
    assert data["labels_without_track_id"] == 2
    assert data["labels_invalid_language"] == 3
    assert (data["labels_invalid_language_unreadable"], data["labels_invalid_language_not_a_language"],
            data["labels_invalid_language_missing"]) == (1, 1, 1)
    assert data["labels_duplicate_rows"] == 1
    assert data["labels_ambiguous_tracks"] == 1 and data["labels_ambiguous_rows"] == 2
    assert data["labels_without_track"] == 1
    assert data["tracks_without_features"] == training_world["without_features"]
    # planted tracks minus the ambiguous one, plus the ghost track: one row each
    assert data["labelled_tracks"] == n - 1 + 1
    accounted = sum(data[k] for k in ("labels_without_track_id", "labels_invalid_language",
                                      "labels_duplicate_rows", "labels_ambiguous_rows", "labelled_tracks"))
    assert accounted == data["labels_in"]
    assert set(trained["models"]) == {"timbral"}


@pytest.mark.slow
def test_every_catalog_track_is_tagged_or_listed_with_a_reason(tagged):
    report, tags = tagged
    assert set(tags) == set(EXPECTED_STATUS), "count in must equal count out (and no training track leaks in)"
    assert report["tracks_in"] == len(EXPECTED_STATUS) == report["tracks_tagged_or_listed"]
    assert report["invalid_track_rows"] == 4   # the null and the blank id, and the two duplicate rows
    assert sum(report["by_status"].values()) == len(EXPECTED_STATUS)
    for track_id, audio_status in EXPECTED_STATUS.items():
        row = tags[track_id]
        if audio_status in ("ok", "truncated"):
            assert row["status"] in ("tagged", "low_confidence") and row["modalities"] == ["timbral"], track_id
        else:
            assert row["status"] == "no_features" and row["language"] == "und", track_id
            assert f"audio status: {audio_status}" in row["reason"], track_id


# ------------------------------------------------------------------ bad input: the schema

def _good_frame(spark, table):
    rows = {"tracks": ([("t1", "a1", "t1.flac", 10.0)], TRACKS_SCHEMA),
            "plays": ([("u1", "t1", datetime(2026, 1, 1, 10), None)],
                      "user_id string, track_id string, ts timestamp, session_id string"),
            "labels": ([("t1", "en")], SCHEMAS["labels"])}[table]
    return spark.createDataFrame(*rows)


BAD_COLUMNS = [  # (table, column, SQL expression of the wrong value or None to drop it, words of the error)
    ("tracks", "track_id", "true", "is boolean"),
    ("tracks", "audio_uri", "array('x.flac')", "is array<string>"),
    ("tracks", "duration_s", "'3:20'", "is string"),
    ("tracks", "audio_uri", None, "missing column 'audio_uri'"),
    ("plays", "user_id", "true", "is boolean"),
    ("plays", "track_id", "1.5D", "is double"),
    ("plays", "ts", "'tomorrow'", "is text that does not read as a timestamp"),
    ("plays", "ts", "true", "is boolean"),
    ("plays", "session_id", "array('s')", "is array<string>"),
    ("plays", "ts", None, "missing column 'ts'"),
    ("labels", "track_id", "true", "is boolean"),
    ("labels", "language", "array('en')", "is array<string>"),
    ("labels", "language", None, "missing column 'language'"),
]


@pytest.mark.parametrize("table, column, value, words", BAD_COLUMNS,
                         ids=[f"{t}.{c}-{w.split()[-1]}" for t, c, _, w in BAD_COLUMNS])
def test_wrong_type_or_missing_key_column_stops_the_job_at_start(spark, catalog, tmp_path, table,
                                                                 column, value, words):
    from lid_spark.jobs import cooccurrence, extract_features, train_classifier

    bad = _good_frame(spark, table)
    bad = bad.drop(column) if value is None else bad.withColumn(column, F.expr(value))
    bad.write.parquet(str(tmp_path / table))
    good = {t: tmp_path / f"good_{t}" for t in ("tracks", "plays", "labels") if t != table}
    for name, path in good.items():
        _good_frame(spark, name).write.parquet(str(path))
    inputs = {**good, table: tmp_path / table}
    job = {"tracks": extract_features, "plays": cooccurrence, "labels": train_classifier}[table]
    settings = _settings(catalog, tables=str(tmp_path / "tables"), report=str(tmp_path / "report"), **inputs)
    with pytest.raises(InputError, match=f"the {table} table does not meet the data contract") as info:
        job.main(settings)
    assert f"'{column}'" in str(info.value) and words in str(info.value)
    assert not (tmp_path / "tables").exists(), "nothing may be written before the input is checked"


@pytest.mark.slow
def test_empty_input_tables(spark, catalog, tagged, tmp_path):
    from lid_spark.jobs import cooccurrence, extract_features, tag_catalog, train_classifier

    for table in ("tracks", "plays", "labels"):
        _good_frame(spark, table).limit(0).write.parquet(str(tmp_path / table))
    inputs = {t: tmp_path / t for t in ("tracks", "plays", "labels")}
    settings = _settings(catalog, tables=str(tmp_path / "tables"), report=str(tmp_path / "report"), **inputs)
    # An empty catalog is a valid catalog: nothing to do, reported as zeros.
    assert extract_features.main(settings) == 0
    report = json.loads((tmp_path / "report" / "extract_features.json").read_text())
    assert report["tracks_in"] == 0 and report["tracks_extracted"] == 0 and report["statuses"] == {}
    assert tag_catalog.main(settings) == 0
    report = json.loads((tmp_path / "report" / "tagging.json").read_text())
    assert report["tracks_in"] == 0 == report["tracks_tagged_or_listed"] and report["by_status"] == {}
    # No plays or no labels: nothing can be learned from them, which the job says.
    with pytest.raises(InputError, match="no usable plays among 0"):
        cooccurrence.main(settings)
    with pytest.raises(InputError, match="no labelled"):
        train_classifier.main(settings)


# ------------------------------------------------------------------ faults


@pytest.mark.slow
def test_python_worker_killed_inside_the_feature_udf_is_retried_without_lost_or_extra_rows(spark, catalog,
                                                                                          extracted):
    """SIGKILL of the Python worker after its task returned rows for one batch: Spark (local[2,3]:
    3 attempts per task) reruns the task; the tables equal those of the clean run."""
    wanted = ["good", "broken_header", "a_directory", "malformed_uri"]
    tracks = spark.read.parquet(str(catalog / "tracks")).where(F.col("track_id").isin(wanted)).dropDuplicates()
    tracks.write.parquet(str(catalog / "tracks_fault"))
    marker = catalog / "worker_killed"
    # Two tasks of two tracks, one track per batch: the kill lands between a task's two batches.
    settings = _settings(catalog, tables="tables_fault", report="report_fault", tracks=catalog / "tracks_fault") + [
        "audio.udf.tracks_per_batch=1", "audio.udf.partitions=2"]
    job = _job_process("extract_features", settings, LID_SPARK_TEST_FAULT_KILL_WORKER_ONCE=str(marker))
    output, _ = job.communicate(timeout=400)
    assert job.returncode == 0, output[-3000:]
    assert marker.exists(), "the fault hook did not fire"
    assert "Lost task" in output or "worker exited unexpectedly" in output.lower(), output[-3000:]

    def table(location, name):
        df = spark.read.format("delta").load(str(catalog / location / name)).where(F.col("track_id").isin(wanted))
        return df.drop("extracted_at").toPandas()

    for name, key in (("audio_status", ["track_id"]), ("vocal_segments", ["track_id", "seg_idx"]),
                      ("timbral_features", ["track_id"])):
        clean, faulted = table("tables", name), table("tables_fault", name)
        assert not faulted.duplicated(key).any(), name
        clean, faulted = (df.sort_values(key).reset_index(drop=True) for df in (clean, faulted))
        assert faulted[key].equals(clean[key]), name
        if name == "audio_status":
            assert faulted["status"].tolist() == clean["status"].tolist()
            assert faulted["n_segments"].tolist() == clean["n_segments"].tolist()
        if name == "vocal_segments":
            assert np.allclose(np.stack(faulted["embedding"]), np.stack(clean["embedding"]), atol=1e-4)
    report = _report(catalog, "extract_features", "report_fault")
    assert report["tracks_extracted"] == 4 and sum(report["statuses"].values()) == 4


@pytest.mark.slow
def test_tagging_killed_during_its_merge_then_rerun_equals_a_clean_run(spark, catalog, tagged):
    from delta.tables import DeltaTable
    from lid_spark.jobs import tag_catalog

    _, clean = tagged
    location = catalog / "tables_killed"
    shutil.copytree(catalog / "tables", location)
    # Half the tags are gone (as if those tracks were new): the next run MERGEs them back in.
    gone = sorted(clean)[::2]
    tags_path = str(location / "language_tags")
    DeltaTable.forPath(spark, tags_path).delete(F.col("track_id").isin(gone))
    version_before = DeltaTable.forPath(spark, tags_path).history(1).first()["version"]

    job = _job_process("tag_catalog", _settings(catalog, tables="tables_killed", report="report_killed"))
    lines = []
    for line in job.stdout:
        lines.append(line)
        if " MERGE " in line and "tags into" in line:  # the step starts: language_tags is being written
            job.send_signal(signal.SIGKILL)
            break
    job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL, "".join(lines[-40:])
    # Whatever instant the kill hit, the table is a consistent version: readable, one row per track.
    history = spark.sql(f"DESCRIBE HISTORY delta.`{tags_path}`").collect()
    assert history[0]["version"] in (version_before, version_before + 1)
    after_kill = _tags(spark, location)
    assert set(after_kill) in (set(clean) - set(gone), set(clean))

    assert tag_catalog.main(_settings(catalog, tables="tables_killed", report="report_killed")) == 0
    _assert_same_tags(_tags(spark, location), clean)
    report = _report(catalog, "tagging", "report_killed")
    assert report["tracks_tagged_or_listed"] == report["tracks_in"] == len(clean)


@pytest.mark.slow
def test_two_tagging_runs_at_once_leave_one_correct_table(spark, catalog, tagged):
    """Two first runs race to create language_tags, on the shared session: each finishes or fails
    with a clear message, and the table is one readable Delta table with one row per track."""
    from lid_spark.jobs import tag_catalog

    _, clean = tagged
    location = catalog / "tables_race"
    shutil.copytree(catalog / "tables_before_tagging", location)
    outcomes = {}

    def run(name):
        try:
            outcomes[name] = tag_catalog.main(_settings(catalog, tables="tables_race", report=f"report_{name}"))
        except Exception as e:  # noqa: BLE001 - asserted below
            outcomes[name] = e

    threads = [threading.Thread(target=run, args=(name,)) for name in ("race_a", "race_b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=400)
    assert set(outcomes) == {"race_a", "race_b"}
    failures = [o for o in outcomes.values() if o != 0]
    assert len(failures) <= 1, failures
    for failure in failures:
        assert "concurrent" in str(failure) and "rerun" in str(failure), failure
    history = spark.sql(f"DESCRIBE HISTORY delta.`{location / 'language_tags'}`").collect()
    assert history, "history must be readable"
    _assert_same_tags(_tags(spark, location), clean)


@pytest.mark.slow
def test_tampered_model_is_refused_before_any_work(spark, catalog, tagged, tmp_path):
    """The checksum refusal itself is tested in test_model.py; here: the job stops at start, and a
    weights file that carries code (with a matching checksum) is refused without running it."""
    import hashlib

    import torch
    from lid_spark.jobs import tag_catalog

    from lid_spark.model.artifact import LanguageClassifier

    model = tmp_path / "model"
    shutil.copytree(catalog / "models" / "timbral", model)
    state = torch.load(model / "weights.pt", weights_only=True)
    name = next(iter(state))
    state[name] = state[name] + 1.0
    torch.save(state, model / "weights.pt")
    settings = _settings(catalog, tables=str(tmp_path / "tables"), report=str(tmp_path / "report")) + [
        f"tagging.model_dir={model}"]
    with pytest.raises(InputError, match="checksum"):
        tag_catalog.main(settings)
    assert not (tmp_path / "tables").exists() and not (tmp_path / "report").exists()

    proof = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(proof),))

    with open(model / "weights.pt", "wb") as f:
        pickle.dump({"head.bias": Payload()}, f, protocol=2)
    sums = "".join(f"{hashlib.sha256((model / n).read_bytes()).hexdigest()}  {n}\n"
                   for n in ("weights.pt", "meta.json"))
    (model / "SHA256SUMS").write_text(sums)
    with pytest.raises(InputError, match="weights only"):
        LanguageClassifier.load(model)
    assert not proof.exists(), "unpickling ran code from the weights file"


# ------------------------------------------------------------------ resource bounds


@pytest.mark.slow
def test_one_hour_file_is_extracted_in_bounded_worker_memory(catalog, tmp_path):
    """A one-hour stereo FLAC through decode, separation, segments, timbre and embeddings in a fresh
    Python process (what a UDF worker runs): memory grows by what audio.max_seconds keeps, not by the
    file. The whole hour decoded at once would be 230 MB (mono float32 at 16 kHz), 230 MB more as
    8 kHz stereo source samples."""
    mix, _ = sf.read(catalog / "audio" / "good.flac", dtype="float32")
    block = np.stack([mix[::2], 0.8 * mix[::2]], axis=1)  # 8 kHz stereo source: cheap to write
    with sf.SoundFile(tmp_path / "hour.flac", "w", SR // 2, 2, format="FLAC") as f:
        for _ in range(600):  # 600 x 6 s
            f.write(block)
    sf.write(tmp_path / "warmup.flac", block, SR // 2)
    cfg = _cfg(catalog)
    probe = subprocess.run(
        [sys.executable, "-m", "tests._memory_probe", codebook_dir(cfg), str(tmp_path / "warmup.flac"),
         str(tmp_path / "hour.flac"), "audio.max_seconds=60", "audio.decode_block_seconds=20"],
        cwd=ROOT, env=_subprocess_env(), capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["status"] == "truncated" and result["duration_s"] == pytest.approx(3600.0)
    assert "60 s of 3600 s" in result["error"] and result["n_segments"] > 0
    assert result["peak_rss_growth_mb"] < 150, result
    assert result["python_heap_peak_mb"] < 150, result


@pytest.mark.slow
def test_a_session_of_100k_plays_is_capped_or_left_out_as_a_bot(spark):
    """One listener session of 10^5 plays: with 900 distinct tracks it is sampled down to
    max_tracks_per_session (at most cap*(cap-1)/2 pairs instead of 404,550); with 10^5 distinct
    tracks it is a bot session (more than bot_session_tracks) and makes no pairs at all."""
    from lid_spark.consumption.pairs import pair_counts
    from lid_spark.consumption.sessions import label_plays, reason_counts, session_tracks

    n, cap = 100_000, 50
    start = datetime(2026, 3, 1).timestamp()
    tracks = spark.range(n).select(F.concat(F.lit("t"), F.col("id").cast("string")).alias("track_id"))
    for distinct, used_pairs in ((900, cap * (cap - 1) // 2), (n, 0)):
        plays = spark.range(n).select(
            F.lit("u1").alias("user_id"),
            F.concat(F.lit("t"), (F.col("id") % distinct).cast("string")).alias("track_id"),
            F.timestamp_seconds(F.lit(start) + F.col("id")).alias("ts"), F.lit("s1").alias("session_id"))
        labelled = label_plays(plays, tracks, now=datetime(2026, 6, 1), max_tracks_per_session=cap,
                               bot_session_tracks=1000)
        reasons = {r["reason"]: r["plays"] for r in reason_counts(labelled).collect()}
        assert sum(reasons.values()) == n, reasons
        if distinct == n:
            assert reasons == {"bot_session": n}
        else:
            assert reasons == {"used": cap, "session_cap": distinct - cap, "repeat_in_session": n - distinct}
        assert pair_counts(session_tracks(labelled)).count() == used_pairs
