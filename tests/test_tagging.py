import numpy as np
import pandas as pd

from lid_spark.tagging import TAG_COLUMNS, tag_rows


def _frame():
    return pd.DataFrame({
        "track_id": ["sure", "unsure", "instr", "nothing", "missing_pred"],
        "consumption": [np.ones(3), np.ones(3), None, None, np.ones(3)],
        "timbral": [np.ones(2), None, np.ones(2), None, None],
        "status": ["ok", "missing_file", "no_vocals", "unreadable", None],
        "feature_fingerprint": [1, 2, 3, 4, 5],
    })


def _preds():
    return pd.DataFrame({
        "track_id": ["sure", "unsure"],
        "scores": [{"ta": 0.9, "te": 0.1}, {"hi": 0.4, "pa": 0.35}],
        "language": ["ta", "hi"], "confidence": [0.9, 0.4], "above_threshold": [True, True],
        "second_language": [None, "pa"], "modalities": [["consumption", "timbral"], ["consumption"]],
    })


def test_every_track_gets_one_row_with_a_status():
    out = tag_rows(_frame(), _preds(), "m1", min_confidence=0.5)
    assert list(out.columns) == TAG_COLUMNS
    assert list(out.track_id) == list(_frame().track_id)
    by_id = out.set_index("track_id")
    assert by_id.loc["sure", "status"] == "tagged" and by_id.loc["sure", "language"] == "ta"
    # Above its threshold but under the confidence floor: kept, flagged, with a reason.
    assert by_id.loc["unsure", "status"] == "low_confidence" and by_id.loc["unsure", "language"] == "hi"
    assert by_id.loc["unsure", "second_language"] == "pa"
    assert by_id.loc["instr", "language"] == "zxx" and bool(by_id.loc["instr", "is_instrumental"])
    assert by_id.loc["nothing", "status"] == "no_features" and "unreadable" in by_id.loc["nothing", "reason"]
    assert by_id.loc["missing_pred", "status"] == "no_features"
    assert set(out.model_version) == {"m1"}


def test_no_predictions_at_all():
    out = tag_rows(_frame(), None, "m1", min_confidence=0.5)
    assert list(out.status) == ["no_features", "no_features", "instrumental", "no_features", "no_features"]
