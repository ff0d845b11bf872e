import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lid_spark.config import (
    CONF_DIR,
    DEFAULT_CONFIG,
    RULES,
    _read_yaml,
    check_rules,
    load_config,
    parse_override,
    rule_keys,
)
from lid_spark.errors import ParameterError

PROFILES = Path(__file__).resolve().parents[1] / "conf"   # the checkout's deployment profiles


def test_defaults_load_and_have_documented_sections():
    cfg = load_config()
    for section in ("spark", "inputs", "tables", "synth", "cooccurrence", "embeddings", "audio", "classifier",
                    "tagging"):
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
    cfg = load_config([CONF_DIR / "demo.yaml"],
                      ["synth.seed=11", "inputs.tracks=/data/x y/tracks", "tables.schema=null"])
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


# --- allowed values and ranges (config.RULES) --------------------------------------------------------

CHECKOUT = Path(__file__).resolve().parents[1]
# Keys that take any value of their type: booleans, and those where every value means something.
FREE_KEYS = {"spark.conf", "cooccurrence.sample_seed"}


def _leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_defaults_pass_their_own_rules():
    schema = _read_yaml(DEFAULT_CONFIG)
    check_rules(schema, default_source=str(DEFAULT_CONFIG))
    for profile in ("local.yaml", "cluster.yaml", "databricks.yaml", "examples/my_catalog.yaml",
                    "examples/second_catalog.yaml"):
        load_config([PROFILES / profile])
    load_config([CONF_DIR / "demo.yaml"])


def test_every_key_with_a_choice_or_a_range_has_a_rule_and_every_rule_a_key():
    schema = _read_yaml(DEFAULT_CONFIG)
    ruled = {key for key, _ in rule_keys(schema)}
    unruled = {key for key, default in _leaves(schema)
               if key not in ruled and key not in FREE_KEYS and default is not None and not isinstance(default, bool)}
    assert not unruled, f"keys of default.yaml without a rule in config.RULES: {sorted(unruled)}"
    for key in RULES:
        node = schema
        for part in key.removesuffix(".*").split("."):
            assert part in node, f"config.RULES has {key!r}, which default.yaml lacks"
            node = node[part]


def _runtime_choices():
    from lid_spark.audio.separation import BACKENDS
    from lid_spark.audio.separation.pretrained import MASKS, STFTS
    from lid_spark.consumption.debias import HUBNESS_METHODS
    from lid_spark.consumption.holdout import PEERS
    from lid_spark.consumption.sgns import OPTIMIZERS
    from lid_spark.consumption.training import TUNABLE_KEYS
    from lid_spark.model.features import SUBSETS
    from lid_spark.model.resnet1d import POSITION_ENCODINGS
    from lid_spark.model.train import AUGMENTATIONS
    from lid_spark.tools.pretrain_spoken_lid import augment, settings
    from lid_spark.tools.synth.music import GENRES
    from lid_spark.tools.voices import WORLD_VOICES

    assert augment.AUGMENTATIONS == settings.AUGMENTATIONS
    return {"synth.voices": WORLD_VOICES, "pretrain_spoken_lid.augmentations": settings.AUGMENTATIONS,
            "pretrain_spoken_lid.voices": settings.TRAIN_VOICES,
            "audio.separation.backend": BACKENDS, "audio.separation.pretrained_mask": MASKS,
            "audio.separation.pretrained_stft": STFTS, "classifier.features": tuple(SUBSETS),
            "classifier.position": POSITION_ENCODINGS, "classifier.augment_missing_consumption": AUGMENTATIONS,
            "cooccurrence.hubness_correction": HUBNESS_METHODS, "embeddings.optimizer": OPTIMIZERS,
            "embeddings.peers": PEERS, "embeddings.grid": TUNABLE_KEYS, "synth.genres": tuple(GENRES)}


def test_rules_allow_what_the_runtime_allows():
    from lid_spark import config

    runtime = _runtime_choices()
    backends = RULES["audio.separation.backend"].choices
    assert runtime["audio.separation.backend"] == config.SEPARATION_BACKENDS == backends
    assert runtime["audio.separation.pretrained_mask"] == config.PRETRAINED_MASKS
    assert runtime["audio.separation.pretrained_stft"] == config.PRETRAINED_STFTS
    assert runtime["classifier.features"] == config.FEATURE_SUBSETS == RULES["classifier.features"].choices
    assert runtime["classifier.position"] == config.POSITION_ENCODINGS == RULES["classifier.position"].choices
    assert (runtime["classifier.augment_missing_consumption"] == config.AUGMENTATIONS
            == RULES["classifier.augment_missing_consumption"].choices)
    assert runtime["cooccurrence.hubness_correction"] == config.HUBNESS_METHODS
    assert runtime["cooccurrence.hubness_correction"] == RULES["cooccurrence.hubness_correction"].choices
    assert runtime["embeddings.optimizer"] == config.OPTIMIZERS == RULES["embeddings.optimizer"].choices
    assert runtime["embeddings.peers"] == config.PEERS
    assert runtime["embeddings.grid"] == config.TUNABLE_KEYS
    assert runtime["synth.genres"] == config.GENRES
    assert runtime["synth.voices"] == config.WORLD_VOICES == RULES["synth.voices"].choices
    assert runtime["pretrain_spoken_lid.augmentations"] == config.PRETRAIN_AUGMENTATIONS
    assert runtime["pretrain_spoken_lid.voices"] == RULES["pretrain_spoken_lid.voices"].choices


def test_device_rule_agrees_with_the_runtime_parser():
    from lid_spark.audio.spoken_lid import _DEVICE

    for device in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "gpu", "cuda:", "cuda:x", "CPU", "cpu:0", ""):
        accepted = RULES["audio.spoken_lid.device"].problem(device, {}) is None
        assert accepted == (device == "auto" or bool(_DEVICE.match(device))), device


@pytest.mark.parametrize("override,message", [
    ("audio.separation.backend=spleter",
     "override: audio.separation.backend must be one of pretrained, softmask, spleeter; got 'spleter' "
     "(did you mean 'spleeter'?)"),
    ("classifier.features=multimodel", "override: classifier.features must be one of timbral, vocals, consumption, "
                                       "audio, multimodal; got 'multimodel' (did you mean 'multimodal'?)"),
    ("audio.spoken_lid.device=gpu", "override: audio.spoken_lid.device must be auto, cpu, cuda or cuda:N; got 'gpu'"),
    ("evaluation.subsets=[audio, vocal]", "override: evaluation.subsets[1] must be one of timbral, vocals, "
                                          "consumption, audio, multimodal; got 'vocal' (did you mean 'vocals'?)"),
    ("tagging.min_confidence=1.5", "override: tagging.min_confidence must be in [0, 1]; got 1.5"),
    ("classifier.lr_factor=1", "override: classifier.lr_factor must be in (0, 1); got 1.0"),
    ("cooccurrence.top_k=0", "override: cooccurrence.top_k must be >= 1; got 0"),
    ("audio.separation.n_fft=1000", "override: audio.separation.n_fft must be a power of two >= 64; got 1000"),
    ("embeddings.learning_rate=.nan", "override: embeddings.learning_rate must be > 0; got nan"),
    ("classifier.split=[0.5, 0.2, 0.2]",
     "override: classifier.split must be a list of 3 non-negative fractions summing to 1; got [0.5, 0.2, 0.2]"),
    ("embeddings.grid.dim=[32, 0]", "override: embeddings.grid.dim[1] must be >= 1; got 0"),
    ("audio.segments.min_seconds=9",
     "override: audio.segments.min_seconds must be <= audio.segments.max_seconds (8.0); got 9.0"),
    ("classifier.learning_rate=null", "override: classifier.learning_rate must be > 0; got None"),
])
def test_bad_values_in_an_override_name_key_value_and_what_is_allowed(override, message):
    with pytest.raises(ParameterError) as caught:
        load_config(overrides=[override])
    assert str(caught.value) == message


def test_bad_values_in_a_file_name_the_file(tmp_path):
    enum = tmp_path / "enum.yaml"
    enum.write_text("audio:\n  separation:\n    backend: spleter\n")
    with pytest.raises(ParameterError, match=r"^.*enum\.yaml: audio\.separation\.backend must be one of pretrained, "
                                             r"softmask, spleeter; got 'spleter' \(did you mean 'spleeter'\?\)$"):
        load_config([enum])
    number = tmp_path / "number.yaml"
    number.write_text("synth:\n  bot_share: 2.0\n")
    with pytest.raises(ParameterError, match=r"^.*number\.yaml: synth\.bot_share must be in \[0, 1\]; got 2\.0$"):
        load_config([number])
    section = tmp_path / "section.yaml"   # a whole section set as a mapping in one override
    with pytest.raises(ParameterError, match=r"^override: audio\.segments\.top_db must be > 0; got -3\.0$"):
        load_config([section] if section.write_text("{}") else [], ["audio.segments={top_db: -3.0}"])


def test_a_later_layer_may_repair_an_earlier_one_and_nullable_keys_take_null(tmp_path):
    layer = tmp_path / "mine.yaml"
    layer.write_text("embeddings:\n  optimizer: adamw\n")
    cfg = load_config([layer], ["embeddings.optimizer=adam", "audio.segments.min_share_db=null",
                                "spark.log_level=info"])
    assert cfg.embeddings.optimizer == "adam" and cfg.audio.segments.min_share_db is None


def test_with_overrides_is_held_to_the_rules():
    cfg = load_config()
    with pytest.raises(ParameterError, match=r"^override: embeddings\.optimizer must be one of sgd, adam; got 'sdg'"):
        cfg.with_overrides(["embeddings.optimizer=sdg"])
    assert cfg.with_overrides(["embeddings.optimizer=adam"]).embeddings.optimizer == "adam"


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("lid-spark")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lid_spark.cli"]


def test_a_bad_value_stops_the_command_within_seconds_before_spark(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.perf_counter()
    result = subprocess.run([*_console_script(), "extract_features", "audio.separation.backend=spleter"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "lid-spark: error: override: audio.separation.backend must be one of pretrained, softmask, spleeter; "
        "got 'spleter' (did you mean 'spleeter'?)"], result.stderr
    assert "Traceback" not in result.stderr and "SparkSession" not in result.stderr
    assert "java" not in result.stderr.lower() and "java" not in result.stdout.lower()
    assert not list(tmp_path.iterdir()), "nothing (spark-warehouse, metastore_db, ...) is written"
    assert seconds < 10, f"took {seconds:.1f} s"
