"""Every write is one atomic commit: kills at each write boundary, two runs at once, a lost executor,
artifacts killed mid-save, and the bad ids and URIs real catalogs bring. Real Spark, Delta and models.

The world: three short songs and two catalog versions. v1 (t1 -> a, t2 -> b, t3 -> a missing file)
is extracted into the ``base`` tables; v2 changes t1's file, makes t3's file appear and adds t4,
so extracting v2 over ``base`` replaces rows of existing tracks (fewer or more segments) and
inserts new ones. An uninterrupted v2 run over a copy of ``base`` is the reference every faulted
run must equal: same keys, statuses, segment counts and embeddings (within 1e-4), no duplicate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lid_spark.audio.timbral import Codebook, codebook_dir, log_mel
from lid_spark.faults import KILL_AT
from tests.audio_samples import SR, song

ROOT = Path(__file__).resolve().parents[1]
TABLES = {"audio_status": ["track_id"], "vocal_segments": ["track_id", "seg_idx"], "timbral_features": ["track_id"]}
SETTINGS = ["spark.shuffle_partitions=2", "audio.max_seconds=30.0", "audio.decode_block_seconds=1.0",
            "audio.timbral.n_mels=32", "audio.timbral.codebook_size=4", "audio.udf.tracks_per_batch=1",
            "audio.udf.partitions=2"]
V1 = [("t1", "a.flac"), ("t2", "b.flac"), ("t3", "a_later.flac")]
V2 = [("t1", "c.flac"), ("t2", "b.flac"), ("t3", "a_later.flac"), ("t4", "b.flac")]
BOUNDARIES = ["extract_features:before:vocal_segments", "extract_features:after:vocal_segments",
              "extract_features:after:timbral_features", "extract_features:after:audio_status"]


def _settings(root: Path, tables: str, tracks: str = "tracks_v2", report: str | None = None) -> list[str]:
    return SETTINGS + [f"inputs.tracks={root / tracks}", f"inputs.audio_root={root / 'audio'}",
                       f"tables.location={root / tables}", f"output.report_dir={root / (report or 'report_' + tables)}",
                       f"output.models_dir={root / 'models'}"]


def _write_tracks(spark, path: Path, rows) -> None:
    spark.createDataFrame([(t, "a0", u, None) for t, u in rows],
                          "track_id string, artist_id string, audio_uri string, duration_s double"
                          ).write.mode("overwrite").parquet(str(path))


def _tables(spark, location: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name, key in TABLES.items():
        df = spark.read.format("delta").load(str(location / name)).toPandas()
        df = df.drop(columns=[c for c in ("extracted_at",) if c in df]).sort_values(key).reset_index(drop=True)
        out[name] = df
    return out


def _assert_no_duplicates(tables: dict[str, pd.DataFrame]) -> None:
    for name, key in TABLES.items():
        assert not tables[name].duplicated(key).any(), f"duplicate rows in {name}"


def _assert_same_tables(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    """Rows lost 0, duplicates 0: same keys in every table, same statuses and versions, same features."""
    _assert_no_duplicates(got)
    for name, key in TABLES.items():
        g, w = got[name], want[name]
        assert g[key].equals(w[key]), f"{name}: keys differ\n{g[key]}\n{w[key]}"
        assert g["feature_version"].tolist() == w["feature_version"].tolist(), name
    status_columns = ["status", "audio_uri", "n_segments", "audio_stat"]
    assert got["audio_status"][status_columns].equals(want["audio_status"][status_columns])
    assert np.allclose(np.stack(got["vocal_segments"]["embedding"]), np.stack(want["vocal_segments"]["embedding"]),
                       atol=1e-4)
    assert np.allclose(np.stack(got["timbral_features"]["vector"]), np.stack(want["timbral_features"]["vector"]),
                       atol=1e-4)


def _subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _job(settings: list[str], master: str = "local[2,3]", **env: str) -> subprocess.Popen:
    """extract_features as spark-submit runs it (``python jobs/extract_features.py``), in its own Spark."""
    own = [f"spark.master={master}", "spark.driver_memory=1g", "spark.log_level=WARN"]
    return subprocess.Popen([sys.executable, str(ROOT / "jobs" / "extract_features.py"), *settings, *own],
                            cwd=ROOT, env=_subprocess_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    """Audio, codebook, the two catalog versions, the v1 ``base`` tables and the v2 reference."""
    from lid_spark.jobs import extract_features

    from lid_spark.config import load_config

    root = tmp_path_factory.mktemp("atomic")
    audio = root / "audio"
    audio.mkdir()
    a, _ = song(4.0, "en", seed=1)
    sf.write(audio / "a.flac", a, SR)
    sf.write(audio / "b.flac", song(4.0, "fr", seed=2)[0], SR)
    sf.write(audio / "c.flac", song(2.5, "es", seed=3)[0], SR)
    cfg = load_config(overrides=_settings(root, "base"))
    Codebook.fit([log_mel(a, SR, 32, 0.064)], SR, n_mels=32, codebook_size=4, seed=0).save(codebook_dir(cfg))
    _write_tracks(spark, root / "tracks_v1", V1)
    _write_tracks(spark, root / "tracks_v2", V2)
    assert extract_features.main(_settings(root, "base", tracks="tracks_v1")) == 0
    shutil.copy(audio / "a.flac", audio / "a_later.flac")  # t3's file appears after the first run
    shutil.copytree(root / "base", root / "clean")
    assert extract_features.main(_settings(root, "clean")) == 0
    report = json.loads((root / "report_clean" / "extract_features.json").read_text())
    assert report["tracks_extracted"] == 3 and report["tracks_unchanged"] == 1  # t1, t3 and t4; t2 unchanged
    return {"root": root, "base": _tables(spark, root / "base"), "clean": _tables(spark, root / "clean")}


# ------------------------------------------------------------------ the driver killed at each write boundary


@pytest.mark.slow
@pytest.mark.parametrize("boundary", BOUNDARIES, ids=[b.split(":", 1)[1] for b in BOUNDARIES])
def test_driver_killed_at_a_write_boundary_then_rerun_equals_an_uninterrupted_run(spark, world, boundary):
    from lid_spark.jobs import extract_features

    root, base, clean = world["root"], world["base"], world["clean"]
    name = "killed_" + boundary.split(":", 1)[1].replace(":", "_")
    shutil.copytree(root / "base", root / name)
    job = _job(_settings(root, name), **{KILL_AT: boundary})
    output, _ = job.communicate(timeout=500)
    assert job.returncode == -signal.SIGKILL, output[-3000:]

    # Whatever was committed, every table is readable and holds each track all old or all new.
    after_kill = _tables(spark, root / name)
    _assert_no_duplicates(after_kill)
    for table, key in TABLES.items():
        for track in ("t1", "t2", "t3", "t4"):
            rows = after_kill[table][after_kill[table].track_id == track].drop(columns=["audio_stat"], errors="ignore")
            old, new = (t[table][t[table].track_id == track].drop(columns=["audio_stat"], errors="ignore")
                        for t in (base, clean))
            assert _same_rows(rows, old, key) or _same_rows(rows, new, key), f"{table} {track} half-replaced"
    # audio_status says a track is done with the new version only when its features are committed.
    status = after_kill["audio_status"].set_index("track_id")
    for track in ("t1", "t3", "t4"):
        if track in status.index and status.loc[track, "audio_uri"] == dict(V2)[track] \
                and status.loc[track, "status"] == "ok":
            for table in ("vocal_segments", "timbral_features"):
                assert _same_rows(after_kill[table][after_kill[table].track_id == track],
                                  clean[table][clean[table].track_id == track], TABLES[table]), (table, track)

    assert extract_features.main(_settings(root, name)) == 0
    _assert_same_tables(_tables(spark, root / name), clean)


def _same_rows(got: pd.DataFrame, want: pd.DataFrame, key: list[str]) -> bool:
    got, want = (df.sort_values(key).reset_index(drop=True) for df in (got, want))
    if not got[key].equals(want[key]):
        return False
    for column in ("feature_version", "status", "audio_uri", "n_segments", "start_s", "end_s"):
        if column in got and got[column].tolist() != want[column].tolist():
            return False
    for column in ("embedding", "vector"):
        if column in got and len(got):
            if not np.allclose(np.stack(got[column]), np.stack(want[column]), atol=1e-4):
                return False
    return True


# ------------------------------------------------------------------ two runs at once


@pytest.mark.slow
def test_two_extract_runs_at_once_leave_one_copy_of_every_track(spark, world, monkeypatch):
    """Two runs in threads of one session (as two notebook cells or two scheduler threads would),
    each with its own Delta transactions and snapshots: both wait at a barrier right before their
    first write, so their MERGEs start together and one must lose and retry (Delta's optimistic
    concurrency: ConcurrentAppendException / ConcurrentDeleteReadException). First on no tables (both
    race to create them), then over the v1 tables (both replace the same tracks)."""
    from lid_spark.jobs import extract_features

    from lid_spark import tables
    from lid_spark.stages import extract_features as stage

    root, clean = world["root"], world["clean"]
    original = stage.replace_tracks
    barrier = threading.Barrier(2, timeout=600)
    first_write = threading.local()

    def replace_tracks_together(*args, **kwargs):
        if not getattr(first_write, "done", False):
            first_write.done = True
            barrier.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(stage, "replace_tracks", replace_tracks_together)

    def race(tables_name: str, tracks: str) -> None:
        outcomes = {}

        def run(name):
            try:
                outcomes[name] = extract_features.main(_settings(root, tables_name, tracks=tracks,
                                                                 report=f"report_{tables_name}_{name}"))
            except Exception as e:  # noqa: BLE001 - asserted below
                outcomes[name] = e

        threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=900)
        assert outcomes == {"a": 0, "b": 0}, outcomes

    # On no tables: both create (the loser of each create MERGEs into the winner's table). The v2
    # catalog from scratch gives the reference tables (t2 is the same file either way).
    race("race_new", "tracks_v2")
    fresh = _tables(spark, root / "race_new")
    _assert_same_tables(fresh, clean)
    assert sorted(fresh["audio_status"].track_id) == ["t1", "t2", "t3", "t4"]

    # Over the v1 tables: both replace t1 and t3 and insert t4, at the same moment.
    shutil.copytree(root / "base", root / "race")
    retries_before = tables.CONFLICT_RETRIES["count"]
    race("race", "tracks_v2")
    assert tables.CONFLICT_RETRIES["count"] > retries_before, "the two runs' MERGEs never conflicted"
    raced = _tables(spark, root / "race")
    _assert_same_tables(raced, clean)
    assert sorted(raced["audio_status"].track_id) == ["t1", "t2", "t3", "t4"]  # one status row per track


# ------------------------------------------------------------------ an executor lost


@pytest.mark.slow
def test_executor_jvm_killed_mid_udf_is_replaced_without_lost_or_extra_rows(spark, world, tmp_path):
    """local-cluster[2,1,1024] (two executor JVMs beside the driver, as on a cluster; it works with the
    pip-installed PySpark): the first Python worker to start its second batch kills its executor JVM
    with SIGKILL (a lost spot node). Spark removes the executor, the standalone worker starts a new
    one, and the lost tasks (and the cached partitions they held) are recomputed."""
    import pyspark

    root, clean = world["root"], world["clean"]
    shutil.copytree(root / "base", root / "executor_lost")
    marker = tmp_path / "executor_killed"
    # The local cluster's workers keep executor logs under $SPARK_HOME/work: a SPARK_HOME of links
    # to the installed PySpark keeps them in this test's directory, not in the installed package.
    spark_home = tmp_path / "spark_home"
    spark_home.mkdir()
    for entry in Path(pyspark.__file__).parent.iterdir():
        if entry.name != "work":
            (spark_home / entry.name).symlink_to(entry)
    job = _job(_settings(root, "executor_lost"), master="local-cluster[2,1,1024]",
               LID_SPARK_TEST_FAULT_KILL_EXECUTOR_ONCE=str(marker), SPARK_HOME=str(spark_home))
    output, _ = job.communicate(timeout=500)
    assert job.returncode == 0, output[-3000:]
    assert marker.exists(), "the fault hook did not fire"
    assert "Lost executor" in output, output[-3000:]
    _assert_same_tables(_tables(spark, root / "executor_lost"), clean)


# ------------------------------------------------------------------ artifacts killed mid-save


@pytest.mark.slow
@pytest.mark.parametrize("kind, point", [
    ("codebook", "codebook:npz_written"),
    ("codebook", "replace_directory:timbral_codebook:files_written"),
    ("classifier", "classifier:weights_written"),
    ("classifier", "replace_directory:audio:files_written"),
])
def test_artifact_killed_mid_save_leaves_the_old_one_then_the_new_one_replaces_it(tmp_path, kind, point):
    from lid_spark.model.artifact import LanguageClassifier

    directory = tmp_path / ("timbral_codebook" if kind == "codebook" else "audio")

    def save(seed, **env):
        return subprocess.run([sys.executable, "-m", "tests._save_artifact", kind, str(directory), str(seed)],
                              cwd=ROOT, env=_subprocess_env(**env), capture_output=True, text=True, timeout=300)

    def identity():
        if kind == "codebook":
            return Codebook.load(str(directory)).checksum
        return LanguageClassifier.load(directory).model_version

    old = save(1)
    assert old.returncode == 0, old.stderr[-2000:]
    files = sorted(p.name for p in directory.iterdir())
    killed = save(2, **{KILL_AT: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert identity() == old.stdout.split()[-1], "a reader must see the old artifact, whole"
    assert sorted(p.name for p in directory.iterdir()) == files
    new = save(2)
    assert new.returncode == 0, new.stderr[-2000:]
    assert identity() == new.stdout.split()[-1] != old.stdout.split()[-1]
    # The killed writer's temporary directory is hidden beside it (removed by a save a day later).
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [directory.name]


# ------------------------------------------------------------------ bad ids and URIs


DIRTY = [  # (track_id, audio_uri, what the row is)
    ("", "a.flac", "blank id"),
    ("   ", "a.flac", "whitespace-only id"),
    ("\t", "a.flac", "tab id"),
    (" spaced ", "a.flac", "id with surrounding whitespace"),
    ("Case", "a.flac", "id equal to another but for case"),
    ("case", "b.flac", "id equal to another but for case"),
    ("unicode_uri", "日本語 の 曲.flac", "uri with spaces and unicode"),
    ("space_uri", "my song.flac", "uri with spaces"),
    ("encoded_uri", "file://{audio}/my%20song.flac", "file:// uri, percent-encoded"),
    ("changing", "changing.flac", "file rewritten under the same uri"),
]


@pytest.fixture(scope="module")
def dirty(spark, world):
    """The dirty catalog (with extra nested columns) extracted once; then changing.flac is rewritten."""
    from lid_spark.jobs import extract_features
    from pyspark.sql import functions as F

    root = world["root"]
    audio = root / "audio"
    shutil.copy(audio / "a.flac", audio / "日本語 の 曲.flac")
    shutil.copy(audio / "b.flac", audio / "my song.flac")
    shutil.copy(audio / "c.flac", audio / "changing.flac")
    rows = [(t, "a0", u.format(audio=audio), None) for t, u, _ in DIRTY]
    tracks = (spark.createDataFrame(rows, "track_id string, artist_id string, audio_uri string, duration_s double")
              .withColumn("release", F.struct(F.lit("lp").alias("format"),
                                              F.array(F.struct(F.lit(1).alias("disc"))).alias("discs")))
              .withColumn("rights", F.create_map(F.lit("us"), F.array(F.lit("stream")))))
    tracks.write.parquet(str(root / "tracks_dirty"))
    settings = _settings(root, "dirty", tracks="tracks_dirty")
    assert extract_features.main(settings) == 0
    first = json.loads((root / "report_dirty" / "extract_features.json").read_text())
    before = _tables(spark, root / "dirty")
    sf.write(audio / "changing.flac", song(5.0, "es", seed=7)[0], SR)  # new audio, same name
    assert extract_features.main(settings) == 0
    second = json.loads((root / "report_dirty" / "extract_features.json").read_text())
    return {"first": first, "second": second, "before": before, "after": _tables(spark, root / "dirty")}


def _status(dirty_run, which="before"):
    return dirty_run[which]["audio_status"].set_index("track_id")


@pytest.mark.slow
def test_blank_and_whitespace_only_ids_count_as_rows_without_id(dirty):
    status, report = _status(dirty), dirty["first"]
    assert not {"", "   ", "\t"} & set(status.index)
    assert report["tracks_in"] == len(DIRTY) and report["tracks_without_id"] == 3
    # Count in = count out: every other row has its status row.
    assert report["tracks_in"] == len(status) + report["tracks_without_id"] + report["duplicate_track_rows"]


@pytest.mark.slow
def test_ids_with_whitespace_or_differing_in_case_are_kept_as_given_and_counted(dirty):
    status, report = _status(dirty), dirty["first"]
    assert {" spaced ", "Case", "case"} <= set(status.index)
    assert status.loc[" spaced ", "status"] == status.loc["Case", "status"] == status.loc["case", "status"] == "ok"
    assert report["track_ids_with_surrounding_whitespace"] == 1 and report["track_ids_equal_but_for_case"] == 1


@pytest.mark.slow
def test_uris_with_spaces_unicode_and_percent_encoding_are_read(dirty):
    status = _status(dirty)
    for track in ("unicode_uri", "space_uri", "encoded_uri"):
        assert status.loc[track, "status"] == "ok", (track, status.loc[track, "error"])
    segments = dirty["before"]["vocal_segments"]
    encoded, raw = (segments[segments.track_id == t].sort_values("seg_idx") for t in ("encoded_uri", "space_uri"))
    assert encoded[["start_s", "end_s"]].values.tolist() == raw[["start_s", "end_s"]].values.tolist()


@pytest.mark.slow
def test_extra_nested_columns_in_the_catalog_are_ignored(dirty):
    assert dirty["first"]["tracks_distinct"] == len(DIRTY) - 3
    assert sum(dirty["first"]["statuses"].values()) == len(DIRTY) - 3


@pytest.mark.slow
def test_a_file_rewritten_under_the_same_uri_is_extracted_again(dirty):
    second, before, after = dirty["second"], _status(dirty), _status(dirty, "after")
    assert second["tracks_extracted"] == 1 and second["tracks_unchanged"] == len(DIRTY) - 4
    assert after.loc["changing", "audio_uri"] == before.loc["changing", "audio_uri"]
    assert after.loc["changing", "audio_stat"] != before.loc["changing", "audio_stat"]
    assert after.loc["changing", "duration_s"] == pytest.approx(5.0, abs=0.01)
    assert before.loc["changing", "duration_s"] == pytest.approx(2.5, abs=0.01)
    segments = dirty["after"]["vocal_segments"]
    assert (segments[segments.track_id == "changing"].seg_idx.sort_values().tolist()
            == list(range(after.loc["changing", "n_segments"])))
    _assert_no_duplicates(dirty["after"])
    others = [t for t in before.index if t != "changing"]
    assert after.loc[others, "audio_stat"].equals(before.loc[others, "audio_stat"])
