from pathlib import Path

import pytest

from lid_spark.config import CONF_DIR, load_config, parse_override
from lid_spark.errors import ParameterError

PROFILES = Path(__file__).resolve().parents[1] / "conf"   # the checkout's deployment profiles


def test_defaults_load_and_have_documented_sections():
    cfg = load_config()
    for section in ("spark", "inputs", "tables", "synth", "cooccurrence", "embeddings", "audio", "classifier", "tagging"):
        assert section in cfg
    assert cfg.spark.shuffle_partitions == 8
    assert cfg.audio.segments.top_db == 30.0


@pytest.mark.parametrize("profile", ["local.yaml", "cluster.yaml", "databricks.yaml"])
def test_shipped_profiles_are_valid(profile):
    cfg = load_config([PROFILES / profile])
    assert cfg.spark.app_name == "lid-spark"


def test_overrides_are_typed_and_layered(tmp_path):
    layer = tmp_path / "mine.yaml"
    layer.write_text("cooccurrence:\n  min_sessions: 5\nspark:\n  conf: {spark.executor.memory: 8g}\n")
    cfg = load_config([layer], ["cooccurrence.min_users=3", "embeddings.learning_rate=1", "tables.schema=main.lid"])
    assert cfg.cooccurrence.min_sessions == 5
    assert cfg.cooccurrence.min_users == 3
    assert cfg.embeddings.learning_rate == 1.0 and isinstance(cfg.embeddings.learning_rate, float)
    assert cfg.spark.conf["spark.executor.memory"] == "8g"
    assert cfg.tables.schema == "main.lid"


def test_written_settings_read_back_identical(tmp_path):
    cfg = load_config([CONF_DIR / "demo.yaml"], ["synth.seed=11", "inputs.tracks=/data/x y/tracks", "tables.schema=null"])
    path = cfg.write_yaml(tmp_path / "out" / "config.yaml")
    assert load_config([path]).to_dict() == cfg.to_dict()


def test_typo_names_the_key_and_suggests():
    with pytest.raises(ParameterError, match=r"cooccurrence\.min_sesions.*did you mean 'cooccurrence\.min_sessions'"):
        load_config(overrides=["cooccurrence.min_sesions=3"])


def test_typo_in_file_names_file_and_key(tmp_path):
    layer = tmp_path / "bad.yaml"
    layer.write_text("embeddings:\n  dimm: 32\n")
    with pytest.raises(ParameterError, match=r"bad\.yaml.*embeddings\.dimm"):
        load_config([layer])


@pytest.mark.parametrize("override,pattern", [
    ("cooccurrence.min_sessions=two", r"cooccurrence\.min_sessions must be int"),
    ("cooccurrence.min_sessions=2.5", r"cooccurrence\.min_sessions must be int"),
    ("spark.resolve_delta_jars=3", r"spark\.resolve_delta_jars must be bool"),
    ("classifier.split=0.7", r"classifier\.split must be list"),
    ("audio.segments=3", r"audio\.segments is a section"),
    ("spark.master.x=1", r"spark\.master is a value"),
])
def test_wrong_types_fail_naming_the_key(override, pattern):
    with pytest.raises(ParameterError, match=pattern):
        load_config(overrides=[override])


def test_override_syntax():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=null") == ("a", None)
    with pytest.raises(ParameterError, match="key=value"):
        parse_override("spark.master")


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ParameterError, match="not found"):
        load_config([tmp_path / "nope.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("spark: [unclosed\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        load_config([bad])
