"""Calibrated scores, the precision target and the out-of-domain guard (issue 23), without Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lid_spark.config import load_config
from lid_spark.errors import ParameterError
from lid_spark.evaluation.confidence import GUARD_VARIANTS, confidence_markdown, confidence_report, guard_tradeoff
from lid_spark.metrics import (
    NEVER,
    expected_calibration_error,
    precision_coverage,
    precision_thresholds,
    reliability_bins,
)
from lid_spark.model.calibration import Calibration, apply_temperature, fit_calibration, fit_distance_guard
from lid_spark.model.dataset import add_modality_flags
from lid_spark.model.train import TrainSettings, artist_split, train_model
from lid_spark.schemas import TAG_LOW_CONFIDENCE, TAG_TAGGED
from lid_spark.tagging import FAR_FROM_TRAINING, MODALITIES_DISAGREE, tag_rows, target_precision
from tests._feature_world import feature_rows, make_world


def _overconfident(n=4000, classes=4, seed=0):
    """Scores of a model that is right 60% of the time but says ~0.9 (sharpened true posteriors)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += 1.2
    return apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.3), labels


def test_ece_on_hand_examples_and_bins():
    assert expected_calibration_error([0.9] * 4, [1, 1, 1, 0]) == pytest.approx(0.15)
    assert expected_calibration_error([0.2, 0.95], [0, 1]) == pytest.approx((0.2 + 0.05) / 2)
    rows = reliability_bins([0.05, 1.0, 0.99], [0, 1, 0], bins=10)
    assert [r["count"] for r in rows] == [1] + [0] * 8 + [2]   # 1.0 falls in the last bin
    assert rows[9]["accuracy"] == 0.5 and rows[1]["confidence"] is None
    assert np.isnan(expected_calibration_error([], []))
    with pytest.raises(ParameterError):
        reliability_bins([0.5], [1, 0])


def test_temperature_scaling_fixes_an_overconfident_model_and_keeps_the_argmax():
    probs, labels = _overconfident()
    cal = fit_calibration(probs[:2000], labels[:2000], ("a", "b", "c", "d"), min_positives=0)
    assert cal.method == "temperature" and cal.temperature > 2.0
    assert cal.val_nll["after"] < cal.val_nll["before"]
    held = probs[2000:]
    calibrated = cal.apply(held, ("a", "b", "c", "d"))
    correct = held.argmax(1) == labels[2000:]
    before = expected_calibration_error(held.max(1), correct)
    after = expected_calibration_error(calibrated.max(1), correct)
    assert before > 0.2 and after < 0.05
    assert (calibrated.argmax(1) == held.argmax(1)).all()
    assert Calibration.from_json(cal.to_json()) == cal


def test_isotonic_only_with_enough_positives_per_class():
    probs, labels = _overconfident(n=800)
    langs = ("a", "b", "c", "d")
    assert fit_calibration(probs, labels, langs, min_positives=1000).method == "temperature"
    iso = fit_calibration(probs, labels, langs, min_positives=50)
    assert iso.method == "isotonic" and set(iso.isotonic) == set(langs)
    out = iso.apply(probs, langs)
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert iso.val_nll["after"] < iso.val_nll["before"]
    assert Calibration.from_json(iso.to_json()).apply(probs, langs) == pytest.approx(out)
    with pytest.raises(ParameterError):
        Calibration.from_json({**iso.to_json(), "method": "platt"})


def test_precision_thresholds_meet_the_target_with_the_largest_coverage():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.3, 1.0, 500)
    correct = rng.uniform(size=500) < conf          # calibrated: right with probability conf
    predicted = np.where(rng.uniform(size=500) < 0.5, "de", "en")
    for target in (0.8, 0.9, 0.95):
        thresholds = precision_thresholds(predicted, conf, correct, ["de", "en", "fr"], target)
        assert thresholds["fr"] == NEVER                # never predicted: never tagged
        for lang in ("de", "en"):
            mine = predicted == lang
            tagged = mine & (conf >= thresholds[lang])
            assert correct[tagged].mean() >= target
            lower = mine & (conf >= np.max(conf[mine & (conf < thresholds[lang])], initial=-1))
            if lower.sum() > tagged.sum():              # one step more coverage breaks the target
                assert correct[lower].mean() < target
    per_language = precision_thresholds(predicted, conf, correct, ["de", "en"], {"de": 0.99, "*": 0.5})
    assert per_language["de"] > per_language["en"] == conf[predicted == "en"].min()
    assert precision_coverage(["de"], ["en"], [False]) == {"items": 1, "tagged": 0, "wrong": 0,
                                                           "precision": None, "coverage": 0.0}


def test_distance_guard_flags_points_far_from_training():
    rng = np.random.default_rng(3)
    guard = fit_distance_guard(rng.normal(size=(300, 5)), rng.normal(size=(300, 5)))
    assert np.all(np.diff(guard.val_distances) >= 0)
    assert 0.005 < np.mean(guard.distances(rng.normal(size=(2000, 5))) > guard.limit(0.99)) < 0.03
    assert np.all(guard.distances(rng.normal(loc=4.0, size=(100, 5))) > guard.limit(0.99))
    with pytest.raises(ParameterError):
        guard.limit(0.0)


def test_target_precision_config_global_and_per_language():
    assert target_precision(load_config()) == 0.95
    assert target_precision(load_config([], ["tagging.target_precision=null"])) is None
    cfg = load_config([], ["tagging.target_precision_by_language.pa=0.99"])
    assert target_precision(cfg) == {"pa": 0.99, "*": 0.95}
    with pytest.raises(ParameterError, match="target_precision"):
        load_config([], ["tagging.target_precision=1.5"])
    with pytest.raises(ParameterError, match="target_precision_by_language.pa"):
        load_config([], ["tagging.target_precision_by_language.pa=0"])
    with pytest.raises(ParameterError, match="guard_quantile"):
        load_config([], ["tagging.guard_quantile=0"])


@pytest.fixture(scope="module")
def trained():
    rows = add_modality_flags(feature_rows(make_world(tracks_per_language=8, seed=4)))
    rows["split"] = artist_split(rows, (0.5, 0.5, 0.0), seed=0)
    train, val = (rows[rows.split == s].reset_index(drop=True) for s in ("train", "val"))
    clf = train_model(train, val, TrainSettings(subset="multimodal", channels=4, epochs=3, device="cpu"))
    return clf, val


def test_trained_model_tags_with_calibrated_scores_the_target_and_the_guard(trained):
    clf, val = trained
    assert clf.calibration is not None and clf.distance_guard is not None
    assert len(clf.val_predictions["language"]) == len(val)
    plain = clf.predict_tracks(val)
    guarded = clf.predict_tracks(val, target_precision=0.9, guard_quantile=0.5, check_modalities=True)
    # validation rows above the precision-target thresholds meet the target there
    thresholds = clf.tag_thresholds(0.9)
    tagged = guarded["above_threshold"].to_numpy()
    if tagged.any():
        assert (guarded["language"][tagged] == val["language"][tagged]).mean() >= 0.9
    assert plain["above_threshold"].tolist() == [c >= clf.calibrated_thresholds[lang] for c, lang
                                                 in zip(plain["confidence"], plain["language"])]
    assert guarded["above_threshold"].tolist() == [c >= thresholds[lang] for c, lang
                                                   in zip(guarded["confidence"], guarded["language"])]
    # the median as limit: about half the validation tracks are far
    far = guarded["distance"] > guarded["distance_limit"]
    assert 0.3 < far.mean() < 0.7
    with_both = val["has_consumption"] & (val["has_timbral"] | val["has_vocals"])
    assert guarded["audio_language"].notna().tolist() == with_both.tolist()

    frame = val[["track_id", "consumption", "timbral"]].assign(status="ok", feature_fingerprint=1)
    rows = tag_rows(frame, guarded, "m", min_confidence=0.0)
    assert len(rows) == len(val) and rows["language"].tolist() == guarded["language"].tolist()
    assert rows["confidence"].tolist() == guarded["confidence"].tolist()   # best guess and calibrated confidence kept
    flagged = rows["reason"].fillna("").str.contains(FAR_FROM_TRAINING)
    assert flagged.tolist() == far.tolist()
    disagree = guarded["audio_language"].notna() & (guarded["audio_language"] != guarded["language"])
    assert rows["reason"].fillna("").str.contains(MODALITIES_DISAGREE).tolist() == disagree.tolist()
    assert (rows.loc[flagged | disagree, "status"] == TAG_LOW_CONFIDENCE).all()
    clean = ~flagged & ~disagree & guarded["above_threshold"]
    assert (rows.loc[clean, "status"] == TAG_TAGGED).all() and rows.loc[clean, "reason"].isna().all()


def test_confidence_report_and_tradeoff(trained, tmp_path):
    clf, val = trained
    report = confidence_report(clf, val, val, 0.5, 0.95, 0.99, True)
    test = report["splits"]["test"]
    assert set(test) == {"calibration", "tagged_without_guard", "tagged", "guard_tradeoff"}
    assert test["tagged"]["tagged"] <= test["tagged_without_guard"]["tagged"]
    assert test["calibration"]["raw"]["ece"] >= 0 and len(test["calibration"]["raw"]["reliability"]) == 10
    assert [r["guard"] for r in test["guard_tradeoff"]] == list(GUARD_VARIANTS)
    assert "ECE" in confidence_markdown(report)
    outcomes = pd.DataFrame({"label": ["de", "de", "en", "en"], "language": ["de", "en", "en", "de"],
                             "passes_threshold": [True, True, True, False], "distance": [1.0, 9.0, 8.0, 9.0],
                             "audio_language": [None, None, "de", None]})
    none, far, modal = guard_tradeoff(outcomes, {"far": (5.0, False), "modal": (None, True)})
    assert (none["tagged"], none["correct_kept"], none["wrong_caught"]) == (3, 1.0, 0.0)
    assert none["wrong_tagged_share"] == 0.25
    assert (far["tagged"], far["correct_kept"], far["wrong_caught"]) == (1, 0.5, 1.0)
    assert (modal["tagged"], modal["correct_kept"], modal["wrong_caught"]) == (2, 0.5, 0.0)


def test_a_model_saved_before_calibration_is_calibrated_on_reuse_not_retrained(trained, tmp_path):
    clf, val = trained
    from lid_spark.model.artifact import LanguageClassifier
    from lid_spark.model.train import train_or_load

    rows = add_modality_flags(feature_rows(make_world(tracks_per_language=8, seed=4)))
    rows["split"] = artist_split(rows, (0.5, 0.5, 0.0), seed=0)
    train = rows[rows.split == "train"].reset_index(drop=True)
    old = LanguageClassifier.load(clf.save(tmp_path / "m"))
    old.calibration, old.calibrated_thresholds, old.val_predictions, old.distance_guard = None, {}, {}, None
    old.settings = {k: v for k, v in old.settings.items() if k != "isotonic_min_positives"}
    old.save(tmp_path / "m")
    assert LanguageClassifier.load(tmp_path / "m").calibration is None
    settings = TrainSettings(subset="multimodal", channels=4, epochs=3, device="cpu")
    again, retrained = train_or_load(train, val, settings, tmp_path / "m")
    assert not retrained and again.model_version == clf.model_version
    assert again.calibration == clf.calibration and again.calibrated_thresholds == clf.calibrated_thresholds
    assert LanguageClassifier.load(tmp_path / "m").calibration == clf.calibration
    _, retrained = train_or_load(train, val, TrainSettings(subset="multimodal", channels=4, epochs=3, device="cpu",
                                                           isotonic_min_positives=1), tmp_path / "m")
    assert not retrained and LanguageClassifier.load(tmp_path / "m").calibration.method == "isotonic"


def test_a_validation_split_without_errors_does_not_send_every_confidence_to_one():
    probs = np.array([[0.7, 0.2, 0.1]] * 40 + [[0.2, 0.7, 0.1]] * 40)
    labels = np.array([0] * 40 + [1] * 40)
    plain = fit_calibration(probs, labels, ("a", "b", "c"), min_positives=0)
    top = plain.apply(probs, ("a", "b", "c")).max(1)
    # all 80 right: the claim is about 81/82 (rule of succession), not 1.0
    assert 0.97 < top.mean() < 0.995 and plain.temperature > 0.05 * 1.5
