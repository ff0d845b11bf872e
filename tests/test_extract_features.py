"""The fit_codebook and extract_features jobs on a tiny catalog with real Spark, Delta and models.

The catalog mixes good songs with the bad-audio matrix: a missing file, corrupt bytes, a zero-length
file, pure silence, a 20-minute song, 8 kHz mono, 48 kHz six-channel, and a track without audio_uri.
Each gets a status row; nothing is lost; a rerun changes nothing; a changed audio_uri is redone.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lid_spark import LANGUAGE_CLASSES
from lid_spark.audio.timbral import Codebook, codebook_dir
from lid_spark.tables import read_table, resolve_table
from tests.audio_samples import SR, drone, song

pytestmark = pytest.mark.slow

EXPECTED_STATUS = {
    "song_en": "ok", "song_fr": "ok", "song_es_8k": "ok", "song_en_6ch": "ok", "drone": "no_vocals",
    "missing": "missing_file", "corrupt": "unreadable", "zero_length": "empty", "silence": "silent",
    "long_song": "truncated", "no_uri": "no_uri",
}


def _resample(wave, sr):
    import librosa

    return librosa.resample(wave, orig_sr=SR, target_sr=sr)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Audio files and a tracks table (Parquet) of the tiny catalog; returns (root, tracks path)."""
    root = tmp_path_factory.mktemp("catalog")
    audio = root / "audio"
    audio.mkdir()
    en, _ = song(8.0, "en", seed=1)
    fr, _ = song(8.0, "fr", seed=2)
    es, _ = song(8.0, "es", seed=3)
    sf.write(audio / "song_en.flac", en, SR)
    sf.write(audio / "song_fr.ogg", fr, SR)
    sf.write(audio / "song_es_8k.wav", _resample(es, 8000), 8000)
    six = np.repeat(_resample(en, 48000)[:, None], 6, axis=1)
    six[:, 4:] *= 0.2
    sf.write(audio / "song_en_6ch.flac", six, 48000)
    sf.write(audio / "drone.mp3", drone(8.0), SR, format="MP3")
    (audio / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(8192))
    (audio / "zero_length.wav").write_bytes(b"")
    sf.write(audio / "silence.wav", np.zeros(5 * SR, dtype=np.float32), SR)
    # 20 minutes of song, written in blocks; the job reads only audio.max_seconds of it.
    with sf.SoundFile(audio / "long_song.flac", "w", SR, 1, format="FLAC") as f:
        for _ in range(150):
            f.write(en)
    uris = {"song_en": "song_en.flac", "song_fr": f"file://{audio}/song_fr.ogg", "song_es_8k": "song_es_8k.wav",
            "song_en_6ch": str(audio / "song_en_6ch.flac"), "drone": "drone.mp3", "missing": "missing.flac",
            "corrupt": "corrupt.flac", "zero_length": "zero_length.wav", "silence": "silence.wav",
            "long_song": "long_song.flac", "no_uri": None}
    rows = [{"track_id": t, "artist_id": f"a{i % 3}", "audio_uri": u, "duration_s": None}
            for i, (t, u) in enumerate(uris.items())]
    rows.append(dict(rows[0]))  # a duplicate track row: counted, extracted once
    path = root / "tracks.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return audio, path


@pytest.fixture(scope="module")
def job_config(spark_config, catalog, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    audio, tracks = catalog
    return spark_config.with_overrides([
        f"inputs.tracks={tracks}", f"inputs.audio_root={audio}",
        f"tables.location={out / 'tables'}", f"output.report_dir={out / 'report'}",
        f"output.models_dir={out / 'models'}",
        "audio.max_seconds=30.0", "audio.timbral.n_mels=32", "audio.timbral.codebook_size=8",
        "audio.timbral.fit_frames_per_track=200", "audio.udf.tracks_per_batch=3", "audio.udf.partitions=2",
    ])


def _settings(cfg):
    return [f"{k}={v}" for k, v in [
        ("inputs.tracks", cfg.inputs.tracks), ("inputs.audio_root", cfg.inputs.audio_root),
        ("tables.location", cfg.tables.location), ("output.report_dir", cfg.output.report_dir),
        ("output.models_dir", cfg.output.models_dir), ("audio.max_seconds", cfg.audio.max_seconds),
        ("audio.timbral.n_mels", cfg.audio.timbral.n_mels),
        ("audio.timbral.codebook_size", cfg.audio.timbral.codebook_size),
        ("audio.timbral.fit_frames_per_track", cfg.audio.timbral.fit_frames_per_track),
        ("audio.udf.tracks_per_batch", cfg.audio.udf.tracks_per_batch),
        ("audio.udf.partitions", cfg.audio.udf.partitions),
    ]]


@pytest.fixture(scope="module")
def fitted(spark, job_config):
    from lid_spark.jobs import fit_codebook

    assert fit_codebook.main(_settings(job_config)) == 0
    return Codebook.load(codebook_dir(job_config))


def test_fit_codebook_job(fitted, job_config):
    report = json.loads(open(os.path.join(job_config.output.report_dir, "fit_codebook.json")).read())
    # 10 tracks have a uri; the missing, corrupt and zero-length ones are counted, not used.
    assert report["tracks_sampled"] == 10 and report["tracks_used"] == 7
    assert report["tracks_not_usable"] == {"missing_file": 1, "unreadable": 1, "empty": 1}
    assert fitted.size == 8 and fitted.n_mels == 32 and report["checksum"] == fitted.checksum
    assert report["pca_explained_variance"] >= 0.95
    assert report["fit_frames"] <= 7 * 200


def _tables(spark, cfg):
    return {name: read_table(spark, resolve_table(cfg, name)).toPandas()
            for name in ("audio_status", "vocal_segments", "timbral_features")}


def _history_length(spark, cfg):
    from delta.tables import DeltaTable

    return {name: DeltaTable.forPath(spark, resolve_table(cfg, name).value).history().count()
            for name in ("audio_status", "vocal_segments", "timbral_features")}


@pytest.fixture(scope="module")
def first_run(spark, fitted, job_config):
    from lid_spark.jobs import extract_features

    assert extract_features.main(_settings(job_config)) == 0
    report = json.loads(open(os.path.join(job_config.output.report_dir, "extract_features.json")).read())
    return report, _tables(spark, job_config)


def test_every_track_gets_a_status_row(first_run):
    report, tables = first_run
    status = tables["audio_status"].set_index("track_id")
    assert status["status"].to_dict() == EXPECTED_STATUS
    assert report["tracks_in"] == 12 and report["duplicate_track_rows"] == 1 and report["tracks_distinct"] == 11
    assert report["tracks_extracted"] == 11 and sum(report["statuses"].values()) == 11
    assert status.loc["missing", "error"].startswith("no such file")
    assert status.loc["long_song", "duration_s"] == pytest.approx(1200.0)
    assert "30 s of 1200 s" in status.loc["long_song", "error"]
    assert status.loc["song_es_8k", "duration_s"] == pytest.approx(8.0)
    assert status["feature_version"].nunique() == 1 and status["feature_version"].iloc[0].startswith("audio-v1-")
    assert status.loc["silence", "vocal_ratio"] == 0.0 and status.loc["song_en", "vocal_ratio"] > 0.3


def test_segments_and_timbral_rows(first_run, fitted):
    report, tables = first_run
    status = tables["audio_status"].set_index("track_id")
    segments = tables["vocal_segments"]
    assert len(segments) == status["n_segments"].sum() == report["segments_written"]
    with_vocals = {t for t, s in EXPECTED_STATUS.items() if s in ("ok", "truncated")}
    assert set(segments["track_id"]) == with_vocals
    for track_id, group in segments.groupby("track_id"):
        assert sorted(group["seg_idx"]) == list(range(len(group))) == list(range(status.loc[track_id, "n_segments"]))
        assert (group["start_s"] < group["end_s"]).all() and (group["end_s"] <= 30.0 + 1e-6).all()
    assert len(segments) <= len(with_vocals) * 8  # audio.segments.max_per_track
    # The 20-minute song's segments are spread over the 30 s analysed, not bunched at its start.
    assert segments[segments.track_id == "long_song"]["start_s"].max() > 15
    dims = segments["embedding"].map(len)
    assert dims.nunique() == 1 and dims.iloc[0] > 16
    from lid_spark.audio.spoken_lid import SpokenLID, label_language

    # One score per language of the spoken-LID model (the classes are chosen at training).
    model_languages = {label_language(label) for label in SpokenLID.load("embedded", device="cpu").languages}
    assert set(LANGUAGE_CLASSES) - {"ot"} <= model_languages
    for scores in segments["spoken_lid_scores"]:
        assert set(dict(scores)) == model_languages
        assert sum(dict(scores).values()) == pytest.approx(1.0, abs=1e-3)
    timbral = tables["timbral_features"].set_index("track_id")
    assert set(timbral.index) == with_vocals | {"drone"}
    assert timbral["vector"].map(len).eq(fitted.vector_size).all()
    # Mono 8 kHz and six-channel 48 kHz copies decode to features like the others.
    en = np.asarray(timbral.loc["song_en", "vector"])
    assert np.abs(np.asarray(timbral.loc["song_en_6ch", "vector"]) - en).max() < 0.25


def test_rerun_changes_nothing(spark, first_run, job_config):
    from lid_spark.jobs import extract_features

    before = _history_length(spark, job_config)
    assert extract_features.main(_settings(job_config)) == 0
    report = json.loads(open(os.path.join(job_config.output.report_dir, "extract_features.json")).read())
    assert report["tracks_extracted"] == 0 and report["tracks_unchanged"] == 11
    assert _history_length(spark, job_config) == before


def test_tracks_that_failed_are_retried_by_a_rerun(spark, first_run, job_config):
    from delta.tables import DeltaTable
    from lid_spark.jobs import extract_features

    # As if the separator process had died on song_fr during the first run.
    status = DeltaTable.forPath(spark, resolve_table(job_config, "audio_status").value)
    status.update("track_id = 'song_fr'", {"status": "'separation_failed'", "error": "'process died'"})
    assert extract_features.main(_settings(job_config)) == 0
    report = json.loads(open(os.path.join(job_config.output.report_dir, "extract_features.json")).read())
    assert report["tracks_extracted"] == 1 and report["statuses"] == {"ok": 1}
    after, before = _tables(spark, job_config), first_run[1]
    assert after["audio_status"].set_index("track_id").loc["song_fr", "status"] == "ok"
    for name in ("vocal_segments", "timbral_features"):  # redone in place: nothing duplicated or lost
        assert len(after[name]) == len(before[name])
        assert (after[name].track_id == "song_fr").sum() == (before[name].track_id == "song_fr").sum()


def test_changed_uri_and_settings_are_redone(spark, first_run, job_config, catalog):
    from lid_spark.jobs import extract_features

    audio, tracks_path = catalog
    tracks = pd.read_parquet(tracks_path)
    # The missing file appears under a new name: only that track is extracted again.
    os.link(audio / "song_en.flac", audio / "found.flac")
    tracks.loc[tracks.track_id == "missing", "audio_uri"] = "found.flac"
    tracks.to_parquet(tracks_path)
    _, tables = first_run
    assert extract_features.main(_settings(job_config)) == 0
    report = json.loads(open(os.path.join(job_config.output.report_dir, "extract_features.json")).read())
    assert report["tracks_extracted"] == 1 and report["statuses"] == {"ok": 1}
    after = _tables(spark, job_config)
    status = after["audio_status"].set_index("track_id")
    assert status.loc["missing", "status"] == "ok" and status.loc["missing", "audio_uri"] == "found.flac"
    found = after["vocal_segments"][after["vocal_segments"].track_id == "missing"].sort_values("seg_idx")
    same = after["vocal_segments"][after["vocal_segments"].track_id == "song_en"].sort_values("seg_idx")
    assert found[["start_s", "end_s"]].values.tolist() == same[["start_s", "end_s"]].values.tolist()
    unchanged = tables["vocal_segments"]
    assert len(after["vocal_segments"]) == len(unchanged) + len(found)
    # A setting that changes the features changes the version: every track is redone, nothing duplicated.
    settings = _settings(job_config) + ["audio.segments.max_per_track=2"]
    assert extract_features.main(settings) == 0
    report = json.loads(open(os.path.join(job_config.output.report_dir, "extract_features.json")).read())
    assert report["tracks_extracted"] == 11
    final = _tables(spark, job_config)
    assert final["vocal_segments"].groupby("track_id").size().max() == 2
    assert len(final["audio_status"]) == 11 and len(final["timbral_features"]) == len(after["timbral_features"])


def test_pin_task_gpu_outside_a_gpu_task():
    from lid_spark.udfs.worker import pin_task_gpu

    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    # No Spark task (or a task without a GPU): the setting is returned unchanged, nothing pinned.
    assert pin_task_gpu("auto") == "auto" and pin_task_gpu("cpu") == "cpu"
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before


def test_extract_without_codebook_is_refused(spark, job_config, tmp_path):
    from lid_spark.jobs import extract_features

    from lid_spark.errors import InputError

    with pytest.raises(InputError, match="fit_codebook"):
        extract_features.main(_settings(job_config) + [f"output.models_dir={tmp_path}"])
