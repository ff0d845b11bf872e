"""A catalog's own languages: labels as people write them, the classes chosen from config, scores onto them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lid_spark import LANGUAGE_CLASSES, TARGET_LANGUAGES
from lid_spark.config import load_config
from lid_spark.errors import InputError, ParameterError
from lid_spark.languages import (
    MISSING,
    NOT_A_LANGUAGE,
    UNREADABLE,
    choose_targets,
    collapse_scores,
    language_classes,
    normalise_language,
    parse_targets,
)
from lid_spark.metrics import language_metrics
from lid_spark.model.dataset import prepare_labels

SPELLINGS = [  # as written -> one code
    ("en", "en"), ("EN", "en"), ("en-US", "en"), ("en_GB", "en"), ("eng", "en"), ("English", "en"),
    ("english", "en"), ("en: English", "en"), ("pt_BR", "pt"), ("pt-PT", "pt"), ("por", "pt"),
    ("Português", "pt"), ("zh-Hant", "zh"), ("zh", "zh"), ("cmn", "zh"), ("cmn-Hans", "zh"), ("arb", "ar"),
    ("KO", "ko"), ("kor", "ko"), ("Korean", "ko"), ("rus", "ru"), ("Deutsch", "de"), ("pa", "pa"),
    ("Punjabi", "pa"), ("yue", "yue"), ("fil", "fil"), ("iw", "he"), (" ta ", "ta"), ("ot", "ot"), ("OT", "ot"),
]


@pytest.mark.parametrize("written, code", SPELLINGS)
def test_labels_as_people_write_them_read_as_one_code(written, code):
    assert normalise_language(written) == (code, None)


@pytest.mark.parametrize("written, reason", [
    (None, MISSING), ("", MISSING), ("   ", MISSING), (float("nan"), MISSING),
    ("xx", UNREADABLE), ("123", UNREADABLE), ("not a language", UNREADABLE),
    ("zxx", NOT_A_LANGUAGE), ("und", NOT_A_LANGUAGE), ("UND", NOT_A_LANGUAGE),
])
def test_unreadable_labels_say_why(written, reason):
    assert normalise_language(written) == (None, reason)


def test_targets_from_config_are_read_like_labels_and_refuse_reserved_and_repeated_codes():
    assert parse_targets(["pt_BR", "KO", "Russian", "arb", "tur", "nl"]) == ("pt", "ko", "ru", "ar", "tr", "nl")
    assert language_classes(TARGET_LANGUAGES) == LANGUAGE_CLASSES
    for bad, words in ((["pt", "ot"], "reserved"), (["zxx"], "reserved"), (["pt", "por"], "same language"),
                       (["xx1"], "cannot read")):
        with pytest.raises(ParameterError, match="classifier.languages"):
            parse_targets(bad)
        with pytest.raises(ParameterError, match="classifier.languages") as info:
            load_config(overrides=[f"classifier.languages=[{','.join(bad)}]"])
        assert words.split()[0] in str(info.value) or "langcodes" in str(info.value)


def test_default_classes_are_the_papers():
    cfg = load_config()
    assert tuple(cfg.classifier.languages) == TARGET_LANGUAGES
    assert tuple(cfg.synth.targets) == TARGET_LANGUAGES


def test_empty_languages_take_every_label_language_with_enough_tracks():
    assert choose_targets([], {"pt": 40, "ko": 12, "sv": 3, "ot": 90}, min_tracks=10) == ("pt", "ko")
    assert choose_targets([], {"pt": 5, "ko": 5}, min_tracks=5) == ("ko", "pt")   # ties by code
    assert choose_targets(["nl", "tr"], {"pt": 40}, min_tracks=10) == ("nl", "tr")


def test_labels_become_classes_and_every_row_is_counted_once():
    rows = pd.DataFrame({
        "track_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", None, "j", "j"],
        "language": ["pt_BR", "Portuguese", "KO", "kor", "sv", "English", "??", None, "zxx", "pt", "ru", "RU"],
    })
    valid, counts, targets, per_code = prepare_labels(rows, ["pt", "ko", "ru"], 1)
    assert targets == ("pt", "ko", "ru")
    assert dict(zip(valid["track_id"], valid["language"])) == {
        "a": "pt", "b": "pt", "c": "ko", "d": "ko", "e": "ot", "f": "ot", "j": "ru"}
    assert counts["labels_invalid_language"] == 3
    assert (counts["labels_invalid_language_unreadable"], counts["labels_invalid_language_missing"],
            counts["labels_invalid_language_not_a_language"]) == (1, 1, 1)
    assert counts["labels_without_track_id"] == 1 and counts["labels_as_other"] == 2
    assert counts["labels_duplicate_rows"] == 1          # j: "ru" and "RU" are one label
    accounted = sum(counts[k] for k in ("labels_without_track_id", "labels_invalid_language",
                                        "labels_duplicate_rows", "labels_ambiguous_rows")) + len(valid)
    assert accounted == counts["labels_in"] == len(rows)
    assert per_code.to_dict() == {"pt": 2, "ko": 2, "sv": 1, "en": 1, "ru": 1}
    # Empty languages: the label languages with enough tracks, the rest "ot".
    valid, _, targets, _ = prepare_labels(rows, [], 2)
    assert targets == ("ko", "pt") and set(valid["language"]) == {"ko", "pt", "ot"}


def test_no_language_with_enough_tracks_is_a_clear_error():
    rows = pd.DataFrame({"track_id": ["a", "b"], "language": ["pt", "ko"]})
    with pytest.raises(InputError, match="min_tracks_per_language=5"):
        prepare_labels(rows, [], 5)


def test_spoken_lid_scores_per_language_collapse_onto_any_classes():
    from lid_spark.audio.spoken_lid import language_class, language_scores, target_scores

    labels = ["pt: Portuguese", "ko: Korean", "en: English", "zh: Chinese", "cmn", "ja: Japanese"]
    post = np.array([[0.4, 0.1, 0.2, 0.1, 0.1, 0.1]])
    stored = {code: float(v[0]) for code, v in language_scores(post, labels).items()}
    assert stored == pytest.approx({"pt": 0.4, "ko": 0.1, "en": 0.2, "zh": 0.2, "ja": 0.1})
    assert collapse_scores(stored, ("pt", "ko", "ot")) == pytest.approx([0.4, 0.1, 0.5])
    assert collapse_scores(stored, LANGUAGE_CLASSES)[LANGUAGE_CLASSES.index("en")] == pytest.approx(0.2)
    assert collapse_scores(stored, LANGUAGE_CLASSES)[-1] == pytest.approx(0.7)   # pt, ko, zh are "ot" there
    direct = target_scores(post, labels, ("pt", "zh", "ot"))
    assert {k: float(v[0]) for k, v in direct.items()} == pytest.approx({"pt": 0.4, "zh": 0.2, "ot": 0.4})
    assert language_class("pt: Portuguese", ("pt",)) == "pt" and language_class("pt: Portuguese") == "ot"


def test_table_rows_and_the_average_follow_the_chosen_targets():
    from lid_spark.evaluation.report import table1_markdown

    classes = ("pt", "ko", "ot")
    labels = np.array(["pt", "pt", "ko", "ko", "ot", "ot"])
    scores = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.8 + 0.2 / 3
    table = language_metrics(labels, scores, classes, {c: 0.5 for c in classes}, average_over=classes[:2])
    assert list(table) == ["pt", "ko", "ot", "avg"] and table["avg"]["ap"] == pytest.approx(1.0)
    lines = table1_markdown({"multimodal": table}).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["pt", "ko", "ot", "Avg."]
