"""Layered YAML configuration, validated against ``conf/default.yaml``.

``conf/default.yaml`` is both the documentation and the schema: every key a user may set exists
there, and its default fixes the type. Later layers (``--config`` files, then ``key=value``
overrides) may only set known keys with values of the same type, and :data:`RULES` says which
values each key accepts (the allowed values of a choice, the range of a number, the form of a
name); anything else fails at start, before any Spark session, with a one-line
:class:`~lid_spark.errors.ParameterError` that names the layer, the key, the value and what is
allowed. The defaults themselves are held to the same rules.

Example
-------
>>> cfg = load_config(overrides=["spark.shuffle_partitions=4"])
>>> cfg.spark.shuffle_partitions
4
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from lid_spark.errors import ParameterError
from lid_spark.package_data import package_path

# The schema and the demo settings ship inside the package (conf/ at the top links to them); from a
# zipped wheel (spark-submit --py-files) they are extracted first.
CONF_DIR = Path(os.environ.get("LID_SPARK_CONF_DIR") or package_path("conf"))
DEFAULT_CONFIG = CONF_DIR / "default.yaml"


# File-system paths that executors open themselves (Config.for_executors resolves them on the driver).
EXECUTOR_PATHS = ("inputs.audio_root", "output.models_dir", "tagging.model_dir", "audio.spoken_lid.savedir",
                  "audio.separation.spleeter_env", "audio.separation.spleeter_models",
                  "audio.separation.pretrained_weights")


def absolute_local_path(value: Any) -> Any:
    """``value`` made absolute when it is a relative local path; URIs, absolute paths and None unchanged.

    Example
    -------
    >>> absolute_local_path("s3a://bucket/models"), absolute_local_path("/mnt/m"), absolute_local_path(None)
    ('s3a://bucket/models', '/mnt/m', None)
    """
    if not isinstance(value, str) or not value or os.path.isabs(value) or re.match(r"^[A-Za-z][\w+.-]*:", value):
        return value
    return os.path.abspath(value)


class Config(Mapping):
    """A read-only nested mapping with attribute access (``cfg.spark.master``)."""

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self._data = dict(data)
        self._path = path

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping):
            return Config(value, f"{self._path}{key}.")
        return value

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no configuration key {self._path}{key!r}") from None

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

    def get_path(self, dotted: str) -> Any:
        node: Any = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def write_yaml(self, path: str | Path) -> Path:
        """Write the resolved settings as a YAML file that ``load_config([path])`` reads back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Resolved lid-spark settings: pass with --config to rerun any stage on the same data.\n"
                        + yaml.safe_dump(self._data, sort_keys=False), encoding="utf-8")
        return path

    def for_executors(self) -> dict[str, Any]:
        """The settings as a plain dict for UDFs, with the file paths executors open made absolute.

        Executors run in working directories of their own, so a relative path (``output.models_dir:
        lid-spark-out/models``) is resolved against the driver's working directory first, where the
        driver itself reads and writes it. URIs (``s3a://``, ``dbfs:/``) are left as they are.

        Example
        -------
        >>> import os
        >>> shipped = load_config([], ["inputs.audio_root=audio"]).for_executors()
        >>> shipped["inputs"]["audio_root"] == os.path.abspath("audio"), os.path.isabs(shipped["output"]["models_dir"])
        (True, True)
        """
        data = self.to_dict()
        for dotted in EXECUTOR_PATHS:
            section, key = dotted.split(".", 1)
            *parents, leaf = key.split(".")
            holder = data[section]
            for name in parents:
                holder = holder[name]
            holder[leaf] = absolute_local_path(holder[leaf])
        return data

    def with_overrides(self, overrides: Iterable[str]) -> Config:
        """A copy with ``key=value`` overrides applied (validated like command-line ones)."""
        data = self.to_dict()
        schema = _read_yaml(DEFAULT_CONFIG)
        sources: dict[str, str] = {}
        for item in overrides:
            key, value = parse_override(item)
            _set_validated(data, schema, key, value, source="override", sources=sources)
        check_rules(data, sources, default_source="configuration")
        return Config(data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ParameterError(f"configuration file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ParameterError(f"configuration file {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"configuration file {path} must hold a mapping at top level")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is read as YAML (numbers, booleans, lists, null)."""
    if "=" not in item:
        raise ParameterError(f"override {item!r} is not of the form key=value (e.g. spark.shuffle_partitions=8)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ParameterError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Check ``value`` against the type of ``default``; return it (ints widen to floats)."""
    if default is None or value is None:
        # A null default means "optional scalar or list"; null may replace any scalar default
        # (unless the key's rule in RULES refuses it).
        if isinstance(value, Mapping) and default is None:
            raise ParameterError(f"{source}: {key} takes a single value, not a mapping")
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
    elif isinstance(default, Mapping):
        if isinstance(value, Mapping):
            return value
    raise ParameterError(
        f"{source}: {key} must be {_type_name(default)} (like the default {default!r}), "
        f"got {_type_name(value)} {value!r}"
    )


def _set_validated(data: dict, schema: Mapping, dotted: str, value: Any, source: str,
                   sources: dict[str, str] | None = None) -> None:
    """Set ``dotted`` in ``data`` after checking it against ``schema``; ``sources`` records who set what."""
    parts = dotted.split(".")
    node, schema_node = data, schema
    if sources is not None:   # every prefix too: a rule on a free-form section (embeddings.grid) finds its layer
        for i in range(len(parts)):
            sources[".".join(parts[: i + 1])] = source
    for i, part in enumerate(parts):
        key_so_far = ".".join(parts[: i + 1])
        free_form = isinstance(schema_node, Mapping) and len(schema_node) == 0
        if not free_form and part not in schema_node:
            close = difflib.get_close_matches(part, list(schema_node), n=1)
            hint = f"; did you mean {'.'.join(parts[:i] + [close[0]])!r}?" if close else ""
            raise ParameterError(f"{source}: unknown configuration key {key_so_far!r}{hint}")
        if i == len(parts) - 1:
            if free_form:
                node[part] = value
            elif isinstance(schema_node[part], Mapping) and len(schema_node[part]) > 0:
                if not isinstance(value, Mapping):
                    raise ParameterError(f"{source}: {key_so_far} is a section; set its keys, "
                                         f"e.g. {key_so_far}.<key>=...")
                for sub_key, sub_value in value.items():
                    _set_validated(data, schema, f"{key_so_far}.{sub_key}", sub_value, source, sources)
            else:
                node[part] = _coerce(key_so_far, schema_node[part], value, source)
            return
        if free_form:
            node = node.setdefault(part, {})
            schema_node = {}
            continue
        if not isinstance(schema_node[part], Mapping):
            raise ParameterError(f"{source}: {key_so_far} is a value, not a section")
        node = node.setdefault(part, {})
        schema_node = schema_node[part]


def _merge_file(data: dict, schema: Mapping, layer: Mapping, source: str, prefix: str = "",
                sources: dict[str, str] | None = None) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        sub_schema = _lookup(schema, dotted)
        if isinstance(value, Mapping) and isinstance(sub_schema, Mapping) and len(sub_schema) > 0:
            _merge_file(data, schema, value, source, prefix=f"{dotted}.", sources=sources)
        else:
            _set_validated(data, schema, dotted, value, source, sources)


def _lookup(schema: Mapping, dotted: str, missing: Any = None) -> Any:
    node: Any = schema
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return missing
        node = node[part]
    return node


# ---------------------------------------------------------------------------------------------------
# Allowed values. The defaults fix each key's type; RULES says which values of that type a key
# accepts, so that a typo or an impossible number stops the job on the driver, before Spark starts,
# instead of failing in an executor an hour later. This module imports no runtime module (only
# lid_spark.languages, below it, to read language codes): where a runtime module keeps its own
# tuple of allowed values (BACKENDS, SUBSETS, OPTIMIZERS, ...), tests/test_config.py checks that
# the tuple here equals it.


@dataclass(frozen=True)
class Problem:
    """Why a value is refused: ``<key><where> must be <why>; got <bad!r><hint>``."""

    bad: Any
    why: str
    where: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Rule:
    """What one key accepts: ``text`` completes "<key> must be ..."; ``check`` returns a Problem or None."""

    text: str
    check: Callable[[Any, Mapping], Problem | None]
    choices: tuple = ()          # the allowed values of a choice (compared with the runtime's constants)
    nullable: bool = False       # null is accepted (it means "off" or "unset")

    def problem(self, value: Any, data: Mapping) -> Problem | None:
        if value is None:
            return None if self.nullable else Problem(value, self.text)
        return self.check(value, data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def one_of(*choices: Any, ignore_case: bool = False) -> Rule:
    """A choice among ``choices`` (with a close-match hint for a misspelt string)."""
    text = "one of " + ", ".join(str(c) for c in choices)
    folded = {c.upper() if ignore_case and isinstance(c, str) else c for c in choices}

    def check(value, _data):
        key = value.upper() if ignore_case and isinstance(value, str) else value
        if isinstance(value, bool) or key not in folded:
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1) if isinstance(value, str) else []
            return Problem(value, text, hint=f" (did you mean {close[0]!r}?)" if close else "")
        return None

    return Rule(text, check, choices=tuple(choices))


_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?[\d.e+-]+)\s*,\s*(-?[\d.e+-]+)\s*([\])])\s*$")
_BOUND = re.compile(r"^\s*(>=|>|<=|<)\s*(-?[\d.e+-]+)\s*$")


def interval(spec: str) -> Rule:
    """A number in ``spec``: ``"[0, 1]"``, ``"(0, 1]"``, ``">= 1"``, ``"> 0"`` (NaN is never inside)."""
    if m := _INTERVAL.match(spec):
        lo, hi = float(m.group(2)), float(m.group(3))
        lo_ok = (lambda v: v >= lo) if m.group(1) == "[" else (lambda v: v > lo)
        hi_ok = (lambda v: v <= hi) if m.group(4) == "]" else (lambda v: v < hi)
        text = f"in {spec.strip()}"
        inside = lambda v: lo_ok(v) and hi_ok(v)  # noqa: E731
    elif m := _BOUND.match(spec):
        op, bound = m.group(1), float(m.group(2))
        inside = {">=": lambda v: v >= bound, ">": lambda v: v > bound,
                  "<=": lambda v: v <= bound, "<": lambda v: v < bound}[op]
        text = f"{op} {m.group(2)}"
    else:
        raise ValueError(f"not an interval: {spec!r}")

    def check(value, _data):
        if not _is_number(value) or math.isnan(value) or not inside(value):
            return Problem(value, text)
        return None

    return Rule(text, check)


def power_of_two(minimum: int) -> Rule:
    text = f"a power of two >= {minimum}"

    def check(value, _data):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum or value & (value - 1):
            return Problem(value, text)
        return None

    return Rule(text, check)


def matches(pattern: str, text: str, nullable: bool = False) -> Rule:
    """A string matching ``pattern`` (described in messages as ``text``)."""
    compiled = re.compile(pattern)

    def check(value, _data):
        return None if isinstance(value, str) and compiled.fullmatch(value) else Problem(value, text)

    return Rule(text, check, nullable=nullable)


def each(item: Rule, at_least: int = 0, distinct: bool = False) -> Rule:
    """A list whose every item follows ``item``; at least ``at_least`` items, all distinct if asked."""
    many = ("a non-empty list" if at_least == 1 else f"a list of {at_least} or more items" if at_least else "a list")
    many += " without repeats" if distinct else ""
    text = f"{many}, each item {item.text}"

    def check(value, data):
        if not isinstance(value, list):
            return Problem(value, text)
        if len(value) < at_least or (distinct and len({repr(v) for v in value}) != len(value)):
            return Problem(value, many)
        for i, v in enumerate(value):
            if (found := item.problem(v, data)) is not None:
                return Problem(found.bad, found.why, f"[{i}]", found.hint)
        return None

    return Rule(text, check)


def low_high(bound: Rule | None = None) -> Rule:
    """A ``[low, high]`` pair of numbers with low <= high (each within ``bound`` when given)."""
    text = "a [low, high] pair of numbers with low <= high" + (f", each {bound.text}" if bound else "")

    def check(value, data):
        if (not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value)
                or not value[0] <= value[1]):
            return Problem(value, text)
        for i, v in enumerate(value):
            if bound is not None and (found := bound.problem(v, data)) is not None:
                return Problem(found.bad, found.why, f"[{i}]")
        return None

    return Rule(text, check)


def fractions(n: int) -> Rule:
    text = f"a list of {n} non-negative fractions summing to 1"

    def check(value, _data):
        if (not isinstance(value, list) or len(value) != n or not all(_is_number(v) and v >= 0 for v in value)
                or not math.isclose(sum(value), 1.0, abs_tol=1e-6)):
            return Problem(value, text)
        return None

    return Rule(text, check)


def timestamp() -> Rule:
    text = "an ISO date-time such as '2000-01-01 00:00:00'"

    def check(value, _data):
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return Problem(value, text)
        return None

    return Rule(text, check)


def tunable(section: str, keys: tuple[str, ...]) -> Rule:
    """A mapping ``{key: [values]}`` (or ``{key: value}``) over ``keys`` of ``section``, each value a valid one."""
    text = "a mapping of " + ", ".join(keys) + " to lists of values"

    def check(value, data):
        if not isinstance(value, Mapping):
            return Problem(value, text)
        for key, values in value.items():
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                return Problem(key, f"a mapping over the tunable keys {', '.join(keys)}", "",
                               f" (did you mean {close[0]!r}?)" if close else "")
            items = values if isinstance(values, list) else [values]
            if not items:
                return Problem(values, "a non-empty list of values", f".{key}")
            default = data[section][key]
            for i, v in enumerate(items):
                if not (type(v) is type(default) or (isinstance(default, float) and _is_number(v))):
                    return Problem(v, f"{_type_name(default)} (like {section}.{key})", f".{key}[{i}]")
                rule = RULES.get(f"{section}.{key}")
                if rule is not None and (found := rule.problem(v, data)) is not None:
                    return Problem(found.bad, found.why, f".{key}[{i}]", found.hint)
        return None

    return Rule(text, check)


def _precision_map() -> Rule:
    """A mapping language code -> precision in (0, 1] (``tagging.target_precision_by_language``)."""
    text = "a mapping of language codes to precisions in (0, 1]"
    share = interval("(0, 1]")

    def check(value, data):
        if not isinstance(value, Mapping):
            return Problem(value, text)
        for key, v in value.items():
            if (found := share.problem(v, data)) is not None:
                return Problem(found.bad, found.why, f".{key}")
        return None

    return Rule(text, check)


def nullable(rule: Rule) -> Rule:
    return Rule(rule.text + " (or null)", rule.check, rule.choices, nullable=True)


# The allowed values of choices that runtime modules also define (tests/test_config.py keeps them equal).
SEPARATION_BACKENDS = ("pretrained", "softmask", "spleeter")          # lid_spark.audio.separation.BACKENDS
PRETRAINED_MASKS = ("vocals", "ratio")                                # lid_spark.audio.separation.pretrained.MASKS
PRETRAINED_STFTS = ("input", "model")                                 # lid_spark.audio.separation.pretrained.STFTS
FEATURE_SUBSETS = ("timbral", "vocals", "consumption", "audio", "multimodal")   # lid_spark.model.features.SUBSETS
POSITION_ENCODINGS = ("none", "ramp", "learned")                      # lid_spark.model.resnet1d
AUGMENTATIONS = ("none", "Z", "A", "Z+G", "A+G")                      # lid_spark.model.train
HUBNESS_METHODS = ("none", "mutual_proximity")                        # lid_spark.consumption.debias
OPTIMIZERS = ("sgd", "adam")                                          # lid_spark.consumption.sgns
PEERS = ("implicit_als", "spark_word2vec", "gensim_word2vec")         # lid_spark.consumption.holdout
TUNABLE_KEYS = ("dim", "epochs", "negatives", "learning_rate", "optimizer", "batch_size", "weight_power")
GENRES = ("pop", "rock", "electronic", "hiphop", "folk", "ballad", "latin", "filmi", "jpop")  # tools.synth.music
PRETRAIN_AUGMENTATIONS = ("formant", "pitch", "tempo", "reverb", "band", "noise", "codec", "specaugment")  # tools
WORLD_VOICES = ("legacy", "all", "training", "held_out")  # tools.voices.WORLD_VOICES
SYNTH_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)  # tools.synth.params
SPARK_LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")  # SparkContext.setLogLevel
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"                              # lid_spark.audio.spoken_lid._DEVICE, plus auto

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
POSITIVE_INT, COUNT = interval(">= 1"), interval(">= 0")
POSITIVE, NON_NEGATIVE, SHARE = interval("> 0"), interval(">= 0"), interval("[0, 1]")
SEED = interval(">= 0")                       # numpy, torch and scikit-learn seeds are non-negative
DEVICE = matches(DEVICE_PATTERN, "auto, cpu, cuda or cuda:N")
NON_EMPTY = matches(r"(?s:.*\S.*)", "a non-empty string")
TABLE_REF = matches(rf"\s*({_IDENT}(\.{_IDENT}){{0,2}}|[^`\n]*/[^`\n]*|[A-Za-z][A-Za-z0-9+.-]*:[^`\n]*)\s*",
                    "a table path (with a '/' or a URI scheme) or a catalog name [catalog.][schema.]table",
                    nullable=True)                                    # lid_spark.tables.parse_table_ref

INPUT_FORMATS = ("auto", "delta", "parquet", "csv", "json")          # lid_spark.tables.INPUT_FORMATS


def _target_languages(value, _data) -> Problem | None:
    from lid_spark.errors import ParameterError
    from lid_spark.languages import parse_targets

    if not isinstance(value, list):
        return Problem(value, "a list of language codes")
    try:
        parse_targets(value)
    except ParameterError as e:
        return Problem(value, "a list of distinct language codes or names, none of ot, zxx, und",
                       hint=f" ({str(e).split(': ', 1)[1]})")
    return None


def _synth_targets(value, data) -> Problem | None:
    others = _lookup(data, "synth.other_languages", [])
    overlap = sorted(set(value) & set(others or []))
    if overlap:
        return Problem(value, "languages that synth.other_languages does not also list",
                       hint=f" ({', '.join(overlap)} in both)")
    return None


_PRETRAIN_RULES: dict[str, Rule] = {
    "languages": Rule("an empty list (the default languages) or two or more distinct language codes",
                      lambda v, d: None if (isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v)
                                             and (not v or len(set(v)) == len(v) >= 2))
                      else Problem(v, "an empty list (the default languages) or two or more distinct language codes")),
    "utterances_per_language": POSITIVE_INT, "eval_utterances": POSITIVE_INT,
    "sung_share": SHARE, "world_singing_share": SHARE, "music_share": SHARE, "separated_share": SHARE,
    "minutes": POSITIVE, "max_steps": POSITIVE_INT, "batch_size": POSITIVE_INT,
    "crop_frames": low_high(interval(">= 50")), "learning_rate": POSITIVE,
    "n_mels": POSITIVE_INT, "channels": POSITIVE_INT, "lin_neurons": POSITIVE_INT, "seed": SEED,
    "torch_threads": POSITIVE_INT, "workers": POSITIVE_INT,
    "voices": one_of("training", "legacy"),
    "augmentations": each(one_of(*PRETRAIN_AUGMENTATIONS), distinct=True),
}

RULES: dict[str, Rule] = {
    "spark.master": NON_EMPTY,
    "spark.app_name": NON_EMPTY,
    "spark.driver_memory": matches(r"(?i)\d+[kmgtp]?b?", "a JVM memory size such as 512m or 4g"),
    "spark.shuffle_partitions": POSITIVE_INT,
    "spark.arrow_batch_rows": POSITIVE_INT,
    "spark.log_level": one_of(*SPARK_LOG_LEVELS, ignore_case=True),
    "inputs.tracks": TABLE_REF, "inputs.plays": TABLE_REF, "inputs.labels": TABLE_REF,
    "inputs.tracks_format": one_of(*INPUT_FORMATS), "inputs.plays_format": one_of(*INPUT_FORMATS),
    "inputs.labels_format": one_of(*INPUT_FORMATS),
    "tables.location": NON_EMPTY,
    "tables.schema": matches(rf"{_IDENT}(\.{_IDENT})?", "a catalog schema such as main.music_lid", nullable=True),
    "tables.names.*": matches(_IDENT, "a table name of letters, digits and underscores"),
    "output.report_dir": NON_EMPTY,
    "output.models_dir": NON_EMPTY,

    "synth.seed": SEED,
    "synth.tracks": POSITIVE_INT,
    "synth.seconds": interval("[1, 600]"),
    "synth.sample_rate": one_of(*SYNTH_SAMPLE_RATES),
    "synth.workers": POSITIVE_INT,
    "synth.targets": Rule("one or more distinct espeak-ng voice codes, none also in synth.other_languages",
                          lambda v, d: each(NON_EMPTY, at_least=1, distinct=True).check(v, d) or _synth_targets(v, d)),
    "synth.other_languages": each(NON_EMPTY, at_least=2, distinct=True),
    "synth.genres": each(one_of(*GENRES), at_least=1),
    "synth.voices": one_of(*WORLD_VOICES),
    "synth.genre_language_affinity": SHARE,
    "synth.market_style": SHARE,
    "synth.tracks_per_artist": interval(">= 1"),
    "synth.bilingual_artist_share": SHARE,
    "synth.bilingual_song_share": SHARE,
    "synth.instrumental_share": interval("[0, 1)"),
    "synth.vocal_level_db": low_high(),
    "synth.intro_seconds": low_high(NON_NEGATIVE),
    "synth.outro_seconds": NON_NEGATIVE,
    "synth.users": POSITIVE_INT,
    "synth.sessions_per_user": interval(">= 1"),
    "synth.plays_per_session": interval(">= 1"),
    "synth.plays": COUNT,
    "synth.second_language_user_share": SHARE,
    "synth.genre_taste": SHARE,
    "synth.session_language_switch": SHARE,
    "synth.hub_share": SHARE,
    "synth.hub_play_share": interval("[0, 1)"),
    "synth.noise_play_share": interval("[0, 1)"),
    "synth.bot_share": SHARE,
    "synth.bot_session_plays": POSITIVE_INT,
    "synth.session_id_share": SHARE,
    "synth.zipf_exponent": interval("(0, 3]"),
    "synth.days": POSITIVE_INT,
    "synth.chunk_plays": POSITIVE_INT,

    "cooccurrence.session_gap_minutes": POSITIVE,
    "cooccurrence.max_tracks_per_session": interval(">= 2"),
    "cooccurrence.bot_session_tracks": interval(">= 2"),
    "cooccurrence.min_sessions": POSITIVE_INT,
    "cooccurrence.min_users": POSITIVE_INT,
    "cooccurrence.top_k": POSITIVE_INT,
    "cooccurrence.hubness_correction": one_of(*HUBNESS_METHODS),
    "cooccurrence.popularity_power": NON_NEGATIVE,
    "cooccurrence.future_tolerance_minutes": NON_NEGATIVE,
    "cooccurrence.min_valid_ts": timestamp(),

    "embeddings.dim": POSITIVE_INT,
    "embeddings.epochs": POSITIVE_INT,
    "embeddings.negatives": POSITIVE_INT,
    "embeddings.learning_rate": POSITIVE,
    "embeddings.optimizer": one_of(*OPTIMIZERS),
    "embeddings.batch_size": POSITIVE_INT,
    "embeddings.weight_power": NON_NEGATIVE,
    "embeddings.seed": SEED,
    "embeddings.torch_threads": POSITIVE_INT,
    "embeddings.device": DEVICE,
    "embeddings.buckets": POSITIVE_INT,
    "embeddings.bucket_passes": POSITIVE_INT,
    "embeddings.shard_pairs": POSITIVE_INT,
    "embeddings.model_version": NON_EMPTY,
    "embeddings.holdout_fraction": interval("(0, 1)"),
    "embeddings.peers": each(one_of(*PEERS), distinct=True),
    "embeddings.grid": tunable("embeddings", TUNABLE_KEYS),

    "audio.sample_rate": POSITIVE_INT,
    "audio.max_seconds": POSITIVE,
    "audio.feature_version": NON_EMPTY,
    "audio.decode_block_seconds": POSITIVE,
    "audio.silence_peak": SHARE,
    "audio.separation.backend": one_of(*SEPARATION_BACKENDS),
    "audio.separation.n_fft": power_of_two(64),
    "audio.separation.similar_seconds": POSITIVE,
    "audio.separation.margin": POSITIVE,
    "audio.separation.power": POSITIVE,
    "audio.separation.block_seconds": POSITIVE,
    "audio.separation.spleeter_params": matches(r"spleeter:[\w.-]+|(?!spleeter:).*\S.*",
                                                "spleeter:<name> or the path of a Spleeter JSON file"),
    "audio.separation.spleeter_timeout_s": POSITIVE,
    "audio.separation.device": DEVICE,
    "audio.separation.pretrained_mask": one_of(*PRETRAINED_MASKS),
    "audio.separation.pretrained_stft": one_of(*PRETRAINED_STFTS),
    "audio.separation.pretrained_batch_chunks": POSITIVE_INT,
    "audio.separation.spleeter_max_restarts": COUNT,
    "audio.segments.top_db": POSITIVE,
    "audio.segments.min_seconds": POSITIVE,
    "audio.segments.max_seconds": POSITIVE,
    "audio.segments.max_per_track": POSITIVE_INT,
    "audio.segments.floor_db": nullable(interval("<= 0")),
    "audio.segments.min_silence_seconds": NON_NEGATIVE,
    "audio.segments.min_share_db": nullable(interval("<= 0")),
    "audio.segments.length_step_seconds": NON_NEGATIVE,
    "audio.segments.mix_share": SHARE,
    "audio.spoken_lid.source": NON_EMPTY,
    "audio.spoken_lid.batch_size": POSITIVE_INT,
    "audio.spoken_lid.device": DEVICE,
    "audio.spoken_lid.bucket_ratio": interval(">= 1"),
    "audio.timbral.n_mels": interval(">= 2"),
    "audio.timbral.window_seconds": POSITIVE,
    "audio.timbral.pca_variance": interval("(0, 1]"),
    "audio.timbral.codebook_size": POSITIVE_INT,
    "audio.timbral.fit_tracks": POSITIVE_INT,
    "audio.timbral.fit_frames_per_track": POSITIVE_INT,
    "audio.timbral.max_iter": POSITIVE_INT,
    "audio.timbral.seed": SEED,
    "audio.udf.tracks_per_batch": POSITIVE_INT,
    "audio.udf.partitions": COUNT,
    "audio.udf.torch_threads": POSITIVE_INT,

    "classifier.languages": Rule("a list of distinct language codes or names, none of ot, zxx, und",
                                 _target_languages),
    "classifier.min_tracks_per_language": POSITIVE_INT,
    "classifier.features": one_of(*FEATURE_SUBSETS),
    "classifier.channels": POSITIVE_INT,
    "classifier.position": one_of(*POSITION_ENCODINGS),
    "classifier.epochs": POSITIVE_INT,
    "classifier.batch_size": POSITIVE_INT,
    "classifier.learning_rate": POSITIVE,
    "classifier.weight_decay": NON_NEGATIVE,
    "classifier.patience": COUNT,
    "classifier.lr_patience": COUNT,
    "classifier.lr_factor": interval("(0, 1)"),
    "classifier.seed": SEED,
    "classifier.augment_missing_consumption": one_of(*AUGMENTATIONS),
    "classifier.noise_scale": NON_NEGATIVE,
    "classifier.segments_per_track": COUNT,
    "classifier.device": DEVICE,
    "classifier.torch_threads": COUNT,             # 0: torch's default
    "classifier.split": fractions(3),
    "classifier.model_version": NON_EMPTY,
    "classifier.isotonic_min_positives": COUNT,

    "evaluation.subsets": each(one_of(*FEATURE_SUBSETS), at_least=1, distinct=True),
    "evaluation.tsne_max_points": interval(">= 5"),
    "evaluation.tsne_perplexity": POSITIVE,
    "evaluation.tsne_seed": SEED,
    "evaluation.mlflow.experiment": NON_EMPTY,

    "tagging.min_confidence": SHARE,
    "tagging.second_language_min": SHARE,
    "tagging.target_precision": nullable(interval("(0, 1]")),
    "tagging.target_precision_by_language": _precision_map(),
    "tagging.guard_quantile": nullable(interval("(0, 1]")),
    "tagging.device": DEVICE,
    "tagging.torch_threads": COUNT,

    **{f"pretrain_spoken_lid.{key}": rule for key, rule in _PRETRAIN_RULES.items()},
}

# Rules between keys: (key, op, factor, other) reads "key op factor x other".
RELATIONS: tuple[tuple[str, str, float, str], ...] = (
    ("audio.segments.min_seconds", "<=", 1, "audio.segments.max_seconds"),
    ("audio.segments.length_step_seconds", "<=", 1, "audio.segments.min_seconds"),
    ("audio.separation.block_seconds", ">=", 4, "audio.separation.similar_seconds"),
    ("cooccurrence.bot_session_tracks", ">=", 1, "cooccurrence.max_tracks_per_session"),
)
_FLIP = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}
_COMPARE = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}

_MISSING = object()


def rule_keys(data: Mapping) -> list[tuple[str, Rule]]:
    """Each (key, rule) that applies to ``data`` (``section.*`` rules expanded to the section's keys)."""
    found = []
    for key, rule in RULES.items():
        if key.endswith(".*"):
            section = _lookup(data, key[:-2], _MISSING)
            if isinstance(section, Mapping):
                found += [(f"{key[:-2]}.{sub}", rule) for sub in section]
        elif _lookup(data, key, _MISSING) is not _MISSING:
            found.append((key, rule))
    return found


def check_rules(data: Mapping, sources: Mapping[str, str] | None = None,
                default_source: str = "configuration") -> None:
    """ParameterError naming the layer, the key, the value and what is allowed, for the first value
    :data:`RULES` or :data:`RELATIONS` refuse (``sources``: the layer that set each key; others are
    ``default_source``).

    Example
    -------
    >>> check_rules({"tagging": {"min_confidence": 2.0}}, {"tagging.min_confidence": "override"})
    Traceback (most recent call last):
    ...
    lid_spark.errors.ParameterError: override: tagging.min_confidence must be in [0, 1]; got 2.0
    """
    sources = sources or {}
    for key, rule in rule_keys(data):
        problem = rule.problem(_lookup(data, key, _MISSING), data)
        if problem is not None:
            raise ParameterError(f"{sources.get(key, default_source)}: {key}{problem.where} must be {problem.why}; "
                                 f"got {problem.bad!r}{problem.hint}")
    for key, op, factor, other in RELATIONS:
        value, bound = _lookup(data, key, _MISSING), _lookup(data, other, _MISSING)
        if not (_is_number(value) and _is_number(bound)) or _COMPARE[op](value, factor * bound):
            continue
        if key not in sources and other in sources:   # name the key the user set
            key, other, op, value, bound, factor = other, key, _FLIP[op], bound, value, 1 / factor
        limit = f"{other} ({bound!r})" if factor == 1 else f"{factor:g} x {other} ({factor * bound:g})"
        raise ParameterError(f"{sources.get(key, default_source)}: {key} must be {op} {limit}; got {value!r}")


def load_config(files: Iterable[str | Path] = (), overrides: Iterable[str] = ()) -> Config:
    """Defaults, then each YAML file in order, then ``key=value`` overrides."""
    schema = _read_yaml(DEFAULT_CONFIG)
    data = copy.deepcopy(schema)
    sources: dict[str, str] = {}
    for path in files:
        _merge_file(data, schema, _read_yaml(Path(path)), source=str(path), sources=sources)
    for item in overrides:
        key, value = parse_override(item)
        _set_validated(data, schema, key, value, source="override", sources=sources)
    check_rules(data, sources, default_source=str(DEFAULT_CONFIG))
    return Config(data)
