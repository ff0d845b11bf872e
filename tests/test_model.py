"""The classifier without Spark: ResNet shapes, fan-out and aggregation, augmentation, split, training, artifacts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from lid_spark import LANGUAGE_CLASSES
from lid_spark.errors import InputError, ParameterError
from lid_spark.metrics import precision_recall_f1, tune_thresholds
from lid_spark.model.artifact import LanguageClassifier
from lid_spark.model.dataset import add_modality_flags
from lid_spark.model.features import InputBatch, InputLayout, ModalityStats, fan_out, song_scores, with_vocal_scores
from lid_spark.model.resnet1d import ResNet1D
from lid_spark.model.train import (
    TrainSettings,
    artist_split,
    data_fingerprint,
    parse_augmentation,
    train_model,
    train_or_load,
    training_inputs,
)
from tests._feature_world import feature_rows, make_world


def test_resnet_shapes_hidden_layer_and_bad_input():
    for position in ("none", "ramp", "learned"):
        net = ResNet1D(n_classes=11, channels=4, position=position, input_size=37).eval()
        x = torch.randn(5, 37)
        assert net(x).shape == (5, 11)
        assert net(x.unsqueeze(1)).shape == (5, 11)
        assert net.hidden(x).shape == (5, 8)
        assert torch.allclose(net.predict_proba(x).sum(dim=1), torch.ones(5))
    assert len(net.blocks) == 3
    assert [m.kernel_size[0] for m in net.blocks[0].body if isinstance(m, torch.nn.Conv1d)] == [8, 5, 3]
    with pytest.raises(ParameterError):
        net(torch.randn(2, 3, 10))
    with pytest.raises(ParameterError):
        ResNet1D(n_classes=1)
    # The learned code is one value per feature and channel: it fixes the input length.
    assert net.position_code.shape == (4, 37)
    with pytest.raises(ParameterError, match="reads vectors of 37 values"):
        net(torch.randn(2, 36))
    with pytest.raises(ParameterError, match="needs the input size"):
        ResNet1D(n_classes=11, position="learned")
    with pytest.raises(ParameterError, match="classifier.position"):
        ResNet1D(n_classes=11, position="sinusoid")
    with pytest.raises(ParameterError, match="needs the input size"):
        ResNet1D(n_classes=11, linear_path=True)


def test_linear_path_adds_a_linear_map_of_the_input_to_the_logits():
    net = ResNet1D(n_classes=3, channels=2, position="none", input_size=5, linear_path=True).eval()
    x = torch.randn(4, 5)
    pooled = net.blocks(net._as_sequence(x)).mean(dim=2)
    linear = x @ net.linear_path.weight.T + net.linear_path.bias
    assert torch.allclose(net(x), net.head(pooled) + linear, atol=1e-6)
    # The last hidden layer (Figure 2) holds both paths: the logits are a linear map of it.
    assert net.hidden_size == 2 * 2 + 3
    assert torch.allclose(net.hidden(x), torch.cat([pooled, linear], dim=1), atol=1e-6)
    assert ResNet1D(n_classes=3, channels=2, input_size=5).linear_path is None


LAYOUT = InputLayout.for_subset("multimodal", {"consumption": 2, "timbral": 1, "vocals": 2})
STATS = {"consumption": ModalityStats(np.array([5.0, 6.0], np.float32), np.ones(2, np.float32)),
         "timbral": ModalityStats(np.array([7.0], np.float32), np.ones(1, np.float32)),
         "vocals": ModalityStats(np.array([8.0, 9.0], np.float32), np.ones(2, np.float32))}
A = {"consumption": "A", "timbral": "A", "vocals": "A"}


def _hand_rows():
    return pd.DataFrame({
        "track_id": ["t1", "t2"],
        "consumption": [np.array([1.0, 2.0]), None],
        "timbral": [np.array([3.0]), np.array([4.0])],
        "seg_embeddings": [[np.array([0.1, 0.2]), np.array([0.3, 0.4])], []],
        "seg_durations": [[1.0, 3.0], []],
    })


def test_fan_out_repeats_song_features_per_segment_and_fills_fallbacks():
    batch = fan_out(_hand_rows(), LAYOUT, STATS, A)
    np.testing.assert_allclose(batch.inputs, [[1, 2, 3, 0.1, 0.2], [1, 2, 3, 0.3, 0.4], [5, 6, 4, 8, 9]], rtol=1e-6)
    assert batch.track_index.tolist() == [0, 0, 1]
    np.testing.assert_allclose(batch.weights, [0.25, 0.75, 1.0])
    zeros = fan_out(_hand_rows(), LAYOUT, STATS, {**A, "consumption": "Z"}, drop=["consumption"])
    np.testing.assert_allclose(zeros.inputs[:, :2], 0.0)
    with pytest.raises(InputError, match="expects 2"):
        fan_out(_hand_rows().assign(consumption=[np.ones(3), None]), LAYOUT, STATS, A)


def test_vocal_scores_extend_each_segment_with_log_class_scores():
    rows = _hand_rows().assign(seg_spoken_lid=[[{"en": 0.5, "fr": 0.5}, [("en", 1.0)]], []])
    extended = with_vocal_scores(rows, ("en", "fr", "ta"))
    first, second = extended.at[0, "seg_embeddings"]
    np.testing.assert_allclose(first, [0.1, 0.2, np.log(0.5), np.log(0.5), np.log(1e-4)], rtol=1e-6)
    np.testing.assert_allclose(second, [0.3, 0.4, 0.0, np.log(1e-4), np.log(1e-4)], rtol=1e-6, atol=1e-7)
    assert extended.at[1, "seg_embeddings"] == [] and rows.at[0, "seg_embeddings"][0].shape == (2,)
    # A segment without scores (none extracted) reads as the uniform distribution.
    no_maps = with_vocal_scores(_hand_rows(), ("en", "fr"))
    np.testing.assert_allclose(no_maps.at[0, "seg_embeddings"][1][2:], np.log([0.5, 0.5]), rtol=1e-6)


def test_song_score_is_duration_weighted_sum_of_segment_scores():
    batch = InputBatch(np.zeros((3, 1), np.float32), np.array([0, 0, 1]), np.array([0.25, 0.75, 1.0]))
    segment = np.array([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9]])
    np.testing.assert_allclose(song_scores(segment, batch, 2), [[0.5, 0.5], [0.1, 0.9]])


def test_augmentation_adds_consumption_and_audio_replicas():
    rows = _hand_rows()
    labels = np.array([3, 4])
    rng = np.random.default_rng(0)
    for mode, noisy in (("Z", False), ("A", False), ("A", True)):
        aug = f"{mode}+G" if noisy else mode
        settings = TrainSettings(augment_missing_consumption=aug, augment_missing_audio=True, segments_per_track=0)
        batch, y, counts = training_inputs(rows, labels, LAYOUT, STATS, settings, rng)
        x, w = batch.inputs, batch.weights
        np.testing.assert_allclose(w, [0.25, 0.75, 1.0, 0.25, 0.75, 1.0, 0.25, 0.75, 0.25, 0.75, 1.0])
        assert batch.track_index.tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]
        # 3 original rows; all 3 again with timbral at its mean; t1 (the only track with consumption)
        # once more per segment without consumption, once more without consumption and timbral, and
        # once without audio.
        assert counts == {"original": 3, "no_timbral": 3, "no_consumption": 2, "no_consumption_timbral": 2,
                          "no_audio": 1}
        assert y.tolist() == [3, 3, 4, 3, 3, 4, 3, 3, 3, 3, 3]
        no_timbral = x[3:6].copy()
        np.testing.assert_allclose(no_timbral[:, 2], 7.0)
        no_timbral[:, 2] = x[0:3, 2]
        np.testing.assert_allclose(no_timbral, x[0:3])          # only the timbral part changed
        replica = x[6:8]
        np.testing.assert_allclose(replica[:, 2:], x[0:2, 2:])  # audio part untouched
        expected = STATS["consumption"].fallback(mode)
        if noisy:
            assert not np.allclose(replica[:, :2], expected) and np.all(np.abs(replica[:, :2] - expected) < 5)
        else:
            np.testing.assert_allclose(replica[:, :2], np.tile(expected, (2, 1)))
        vocals_only = x[8:10]
        np.testing.assert_allclose(vocals_only[:, 3:], x[0:2, 3:])  # vocals untouched
        if not noisy:
            np.testing.assert_allclose(vocals_only[:, :3], np.tile([*expected, 7.0], (2, 1)))
        np.testing.assert_allclose(x[10], [1, 2, 7, 8, 9])  # no-audio replica: timbral+vocals at the mean
    plain = TrainSettings(augment_missing_consumption="none", augment_missing_audio=False,
                          augment_missing_timbral=False)
    assert training_inputs(rows, labels, LAYOUT, STATS, plain, rng)[2] == {"original": 3, "no_consumption": 0,
                                                                            "no_audio": 0, "no_timbral": 0,
                                                                            "no_consumption_timbral": 0}
    timbral_only = InputLayout.for_subset("timbral", {"timbral": 1})
    assert training_inputs(rows, labels, timbral_only, STATS, TrainSettings(subset="timbral"),
                           rng)[2]["no_timbral"] == 0
    assert parse_augmentation("Z+G") == ("Z", True)
    with pytest.raises(ParameterError, match="augment_missing_consumption"):
        parse_augmentation("B")


def test_artist_split_keeps_artists_whole_is_stratified_and_deterministic():
    rng = np.random.default_rng(4)
    rows = []
    for lang in LANGUAGE_CLASSES:
        for a in range(40):
            for t in range(int(rng.integers(1, 6))):
                rows.append((f"{lang}-{a}-{t}", f"{lang}-{a}", lang))
    rows.append(("orphan", None, "de"))
    tracks = pd.DataFrame(rows, columns=["track_id", "artist_id", "language"])
    split = artist_split(tracks, seed=1)
    assert split.notna().all() and set(split) == {"train", "val", "test"}
    assert (tracks.assign(split=split).groupby("artist_id")["split"].nunique() == 1).all()
    shares = split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.70) < 0.03 and abs(shares["val"] - 0.15) < 0.03 and abs(shares["test"] - 0.15) < 0.03
    per_language = tracks.assign(split=split).groupby("language")["split"].apply(lambda s: (s == "train").mean())
    assert per_language.between(0.6, 0.8).all()
    assert split.equals(artist_split(tracks, seed=1))
    assert not split.equals(artist_split(tracks, seed=2))
    with pytest.raises(ParameterError):
        artist_split(tracks, fractions=(0.5, 0.5, 0.5))


def test_tuned_thresholds_maximise_validation_f1():
    labels = np.array(["de", "de", "en", "en", "ot"])
    scores = np.array([[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.45, 0.5, 0.05], [0.1, 0.8, 0.1], [0.3, 0.1, 0.6]])
    tau = tune_thresholds(labels, scores, ["de", "en", "ot"])
    for j, lang in enumerate(["de", "en", "ot"]):
        best = max(precision_recall_f1(labels == lang, scores[:, j], t)[2] for t in scores[:, j])
        assert precision_recall_f1(labels == lang, scores[:, j], tau[lang])[2] == pytest.approx(best)
    assert tau["de"] == pytest.approx(0.4)  # accepting both de tracks and one en: F1 0.8 beats 0.667


@pytest.fixture(scope="module")
def tiny_data():
    rows = add_modality_flags(feature_rows(make_world(tracks_per_language=6, seed=2)))
    rows["split"] = artist_split(rows, (0.5, 0.5, 0.0), seed=0)
    return rows[rows.split == "train"].reset_index(drop=True), rows[rows.split == "val"].reset_index(drop=True)


FAST = dict(channels=4, epochs=2, torch_threads=1, device="cpu")


def test_training_is_deterministic_under_a_seed(tiny_data):
    train, val = tiny_data
    first = train_model(train, val, TrainSettings(subset="multimodal", seed=3, **FAST))
    again = train_model(train, val, TrainSettings(subset="multimodal", seed=3, **FAST))
    other = train_model(train, val, TrainSettings(subset="multimodal", seed=4, **FAST))
    for name, tensor in first.net.state_dict().items():
        assert torch.equal(tensor, again.net.state_dict()[name]), name
    assert first.model_version == again.model_version != other.model_version
    assert first.metrics["rows_no_consumption"] > 0 and first.metrics["rows_no_audio"] > 0
    assert first.metrics["rows_no_timbral"] > 0
    assert set(first.thresholds) == set(LANGUAGE_CLASSES)


def test_a_saved_model_is_reused_only_for_the_same_tracks_labels_and_feature_values(tiny_data, tmp_path):
    train, val = tiny_data
    assert data_fingerprint(train.sample(frac=1.0, random_state=0), val) == data_fingerprint(train, val)
    # Nested lists come from Arrow as object arrays: equal contents in new objects, equal digest.
    def object_arrays(frame):
        out = frame.copy()
        nested = []
        for segs in frame["seg_embeddings"]:
            arr = np.empty(len(segs), dtype=object)
            for i, e in enumerate(segs):
                arr[i] = np.array(e, np.float32)
            nested.append(arr)
        out["seg_embeddings"] = nested
        return out

    assert data_fingerprint(object_arrays(train), val) == data_fingerprint(object_arrays(train), val)
    changed = train.copy()
    changed.at[0, "timbral"] = np.asarray(changed.at[0, "timbral"]) + np.float32(1e-3)
    assert data_fingerprint(changed, val) != data_fingerprint(train, val)
    relabelled = train.copy()
    relabelled.at[0, "language"] = "ot" if relabelled.at[0, "language"] != "ot" else "en"
    assert data_fingerprint(relabelled, val) != data_fingerprint(train, val)

    settings = TrainSettings(subset="timbral", seed=3, **FAST)
    _, trained = train_or_load(train, val, settings, tmp_path / "m")
    _, trained_again = train_or_load(train, val, settings, tmp_path / "m")
    _, trained_on_new_features = train_or_load(changed, val, settings, tmp_path / "m")
    assert (trained, trained_again, trained_on_new_features) == (True, False, True)


def test_artifact_round_trip_predictions_and_checksum_refusal(tiny_data, tmp_path):
    train, val = tiny_data
    clf = train_model(train, val, TrainSettings(subset="audio", **FAST))
    clf.save(tmp_path / "m")
    loaded = LanguageClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.score_tracks(val), clf.score_tracks(val), rtol=1e-5, atol=1e-7)
    # an audio model trained with timbral replicas averages its posteriors with and without timbre
    assert loaded.average_without_timbral
    single = dataclasses.replace(loaded, average_without_timbral=False)
    averaged = (single.score_tracks(val) + single.score_tracks(val, drop=["timbral"])) / 2
    np.testing.assert_allclose(loaded.score_tracks(val), averaged, rtol=1e-6, atol=1e-9)
    assert not np.allclose(single.score_tracks(val), averaged)
    tags = loaded.predict_tracks(val, second_language_min=0.0)
    # the guard's columns (issue 23) follow the tag columns; None unless asked for
    assert list(tags.columns) == ["track_id", "scores", "language", "confidence", "above_threshold",
                                  "second_language", "modalities", "distance", "distance_limit", "audio_language"]
    assert tags["distance"].isna().all() and tags["audio_language"].isna().all()
    assert len(tags) == len(val) and tags["track_id"].tolist() == val["track_id"].tolist()
    first = tags.iloc[0]
    assert set(first["scores"]) == set(LANGUAGE_CLASSES) and sum(first["scores"].values()) == pytest.approx(1.0)
    assert first["confidence"] == max(first["scores"].values()) == first["scores"][first["language"]]
    assert first["second_language"] != first["language"] and first["second_language"] in LANGUAGE_CLASSES
    assert loaded.predict_tracks(val, second_language_min=1.01)["second_language"].isna().all()
    no_vocals = val.index[~val["has_vocals"] & val["has_timbral"]]
    for i in tags.index:
        assert set(tags.at[i, "modalities"]) <= {"timbral", "vocals"}
    if len(no_vocals):
        assert tags.at[no_vocals[0], "modalities"] == ["timbral"]
    assert loaded.model_version == clf.model_version and loaded.thresholds == clf.thresholds
    # the calibration, calibrated thresholds, validation predictions and guard travel with the artifact
    assert loaded.calibration == clf.calibration and loaded.calibrated_thresholds == clf.calibrated_thresholds
    assert loaded.val_predictions == clf.val_predictions
    np.testing.assert_allclose(loaded.distance_guard.precision, clf.distance_guard.precision)
    np.testing.assert_allclose(np.stack([list(s.values()) for s in tags["scores"]]),
                               loaded.calibrate(loaded.score_tracks(val)), rtol=1e-9)

    weights = tmp_path / "m" / "weights.pt"
    state = torch.load(weights, weights_only=True)
    state["head.bias"] += 1.0
    torch.save(state, weights)
    with pytest.raises(InputError, match="checksum"):
        LanguageClassifier.load(tmp_path / "m")
    clf.save(tmp_path / "m2")
    meta = tmp_path / "m2" / "meta.json"
    meta.write_text(meta.read_text().replace('"subset": "audio"', '"subset": "vocals"'))
    with pytest.raises(InputError, match="checksum"):
        LanguageClassifier.load(tmp_path / "m2")
    with pytest.raises(InputError, match="missing"):
        LanguageClassifier.load(tmp_path / "nothing")


def test_vocal_scores_are_part_of_the_model(tiny_data, tmp_path):
    train, val = tiny_data
    with_scores = train_model(train, val, TrainSettings(subset="vocals", **FAST))
    plain = train_model(train, val, TrainSettings(subset="vocals", vocal_scores=False, **FAST))
    assert with_scores.vocal_scores and not plain.vocal_scores
    assert with_scores.layout.dims["vocals"] == plain.layout.dims["vocals"] + len(LANGUAGE_CLASSES)
    with_scores.save(tmp_path / "m")
    loaded = LanguageClassifier.load(tmp_path / "m")
    assert loaded.vocal_scores
    np.testing.assert_allclose(loaded.score_tracks(val), with_scores.score_tracks(val), rtol=1e-5, atol=1e-7)
    # The scores move the predictions: the same model reading other scores scores differently.
    shifted = val.assign(seg_spoken_lid=val["seg_spoken_lid"].map(lambda maps: [{"ta": 1.0} for _ in maps]))
    assert not np.allclose(loaded.score_tracks(shifted), loaded.score_tracks(val))
    # A timbral model has no vocals part to extend.
    assert not train_model(train, val, TrainSettings(subset="timbral", **FAST)).vocal_scores


@pytest.mark.slow
def test_track_feature_frame_contract(spark, table_config):
    from lid_spark.model.features import track_feature_frame
    from lid_spark.schemas import STATUS_NO_VOCALS, STATUS_OK
    from lid_spark.tables import resolve_table, write_table
    from tests._feature_world import SCHEMAS

    lid = {"en": 0.7, "ot": 0.3}
    segments = [("t1", 1, 2.0, 5.0, [1.0, 1.0], lid, "v"), ("t1", 0, 0.0, 1.0, [0.0, 0.0], lid, "v")]
    timbral = [("t1", [0.5, 0.5, 0.5], "v"), ("t1", [0.5, 0.5, 0.5], "v"), ("t2", [0.1, 0.2, 0.3], "v")]
    status = [("t1", STATUS_OK, None, 0.5, 2, 10.0, "v"), ("t2", STATUS_NO_VOCALS, None, 0.0, 0, 10.0, "v")]
    for rows, key, table in ((segments, "segments", "vocal_segments"), (timbral, "timbral", "timbral_features"),
                             (status, "status", "audio_status")):
        write_table(spark.createDataFrame(rows, SCHEMAS[key]), resolve_table(table_config, table))
    wanted = spark.createDataFrame([("t1",), ("t2",), ("t3",), ("t3",)], "track_id string")
    frame = track_feature_frame(spark, table_config, wanted)  # no consumption table yet
    assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
        ("track_id", "string"), ("consumption", "array<float>"), ("timbral", "array<float>"),
        ("seg_embeddings", "array<array<float>>"), ("seg_durations", "array<double>"),
        ("seg_spoken_lid", "array<map<string,float>>"), ("status", "string"), ("vocal_ratio", "double")]
    rows = {r.track_id: r for r in frame.collect()}
    assert sorted(rows) == ["t1", "t2", "t3"]
    t1, t2, t3 = rows["t1"], rows["t2"], rows["t3"]
    assert t1.consumption is None and t1.timbral == pytest.approx([0.5] * 3)
    assert t1.seg_embeddings == [[0.0, 0.0], [1.0, 1.0]] and t1.seg_durations == [1.0, 3.0]  # by seg_idx
    assert t1.seg_spoken_lid[0]["en"] == pytest.approx(0.7) and t1.status == "ok"
    assert t2.seg_embeddings == [] and t2.seg_durations == [] and t2.status == "no_vocals"
    assert t3.timbral is None and t3.seg_embeddings == [] and t3.status is None and t3.vocal_ratio is None
