"""The knobs of the synthetic world, read from the ``synth:`` section of the configuration and checked.

Example
-------
>>> p = SynthParams.from_any({"tracks": 33, "seconds": 6.0})
>>> p.tracks, p.seconds
(33, 6.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lid_spark import OTHER_LANGUAGE
from lid_spark.errors import ParameterError
from lid_spark.languages import language_code
from lid_spark.tools.synth.music import GENRES


@dataclass(frozen=True)
class SynthParams:
    """All knobs; defaults equal ``conf/default.yaml`` (section ``synth``), where each is documented."""

    seed: int = 7
    tracks: int = 528
    seconds: float = 12.0
    sample_rate: int = 16000
    workers: int = 2
    write_stems: bool = False
    report: bool = True
    targets: tuple[str, ...] = ("de", "en", "es", "fr", "hi", "it", "ja", "pa", "ta", "te")
    other_languages: tuple[str, ...] = ("ru", "ar", "ko", "cmn", "pt", "nl", "tr", "sv", "bn", "el", "pl", "id")
    genres: tuple[str, ...] = tuple(GENRES)
    voices: str = "legacy"
    genre_language_affinity: float = 0.6
    market_style: float = 1.0
    tracks_per_artist: float = 4.0
    bilingual_artist_share: float = 0.08
    bilingual_song_share: float = 0.05
    instrumental_share: float = 0.05
    vocal_level_db: tuple[float, float] = (-6.0, 6.0)
    intro_seconds: tuple[float, float] = (1.0, 3.0)
    outro_seconds: float = 1.0
    users: int = 400
    sessions_per_user: float = 6.0
    plays_per_session: float = 8.0
    plays: int = 0
    second_language_user_share: float = 0.2
    genre_taste: float = 0.5
    session_language_switch: float = 0.1
    hub_share: float = 0.02
    hub_play_share: float = 0.05
    noise_play_share: float = 0.03
    bot_share: float = 0.01
    bot_session_plays: int = 3000
    session_id_share: float = 0.6
    zipf_exponent: float = 1.0
    days: int = 30
    chunk_plays: int = 5_000_000

    @classmethod
    def from_any(cls, source: Any = None, **overrides) -> SynthParams:
        """Build from a full Config (its ``synth`` section), a mapping of synth keys, or SynthParams."""
        if isinstance(source, SynthParams):
            values = dataclasses.asdict(source)
        elif source is None:
            values = {}
        elif isinstance(source, Mapping):
            section = source["synth"] if "synth" in source and isinstance(source["synth"], Mapping) else source
            values = dict(section.to_dict() if hasattr(section, "to_dict") else section)
        else:
            raise ParameterError("synth parameters must be a Config, a mapping or SynthParams, "
                                 f"got {type(source).__name__}")
        values.update(overrides)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown synth parameter(s) {['synth.' + k for k in unknown]}; "
                                 f"known: {sorted(known)}")
        for key in ("targets", "other_languages", "genres", "vocal_level_db", "intro_seconds"):
            if key in values and isinstance(values[key], list):
                values[key] = tuple(values[key])
        params = cls(**values)
        params.validate()
        return params

    def validate(self) -> None:
        """Raise ParameterError naming the first bad key (``synth.<key>``)."""
        def bad(key, why):
            raise ParameterError(f"synth.{key} {why}, got {getattr(self, key)!r}")

        for key in ("tracks", "users", "sample_rate", "days", "chunk_plays", "bot_session_plays", "workers"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(key, "must be a positive integer")
        if not isinstance(self.plays, int) or self.plays < 0:
            bad("plays", "must be an integer >= 0 (0: users x sessions_per_user x plays_per_session)")
        if not 1.0 <= self.seconds <= 600.0:
            bad("seconds", "must be between 1 and 600")
        if self.sample_rate not in (8000, 16000, 22050, 24000, 32000, 44100, 48000):
            bad("sample_rate", "must be a common audio rate (8000, 16000, 22050, 24000, 32000, 44100, 48000)")
        for key in ("genre_language_affinity", "market_style", "bilingual_artist_share", "bilingual_song_share",
                    "second_language_user_share", "genre_taste", "session_language_switch", "hub_share",
                    "hub_play_share", "noise_play_share", "bot_share", "session_id_share"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                bad(key, "must be a share between 0 and 1")
        if not 0.0 <= self.instrumental_share < 1.0:
            bad("instrumental_share", "must be a share in [0, 1) (some tracks must be sung)")
        if self.hub_play_share + self.noise_play_share >= 1.0:
            bad("noise_play_share", "plus synth.hub_play_share must stay below 1")
        for key in ("tracks_per_artist", "sessions_per_user", "plays_per_session"):
            if not getattr(self, key) >= 1.0:
                bad(key, "must be >= 1")
        if not 0.0 < self.zipf_exponent <= 3.0:
            bad("zipf_exponent", "must be in (0, 3]")
        for key in ("vocal_level_db", "intro_seconds"):
            value = getattr(self, key)
            if len(value) != 2 or not value[0] <= value[1]:
                bad(key, "must be a [low, high] pair with low <= high")
        if self.intro_seconds[0] < 0 or self.outro_seconds < 0:
            bad("intro_seconds", "and synth.outro_seconds must be >= 0")
        from lid_spark.tools.voices import WORLD_VOICES

        if self.voices not in WORLD_VOICES:
            bad("voices", f"must be one of {', '.join(WORLD_VOICES)}")
        if not self.genres:
            bad("genres", "must name at least one genre")
        unknown = [g for g in self.genres if g not in GENRES]
        if unknown:
            bad("genres", f"has unknown genres {unknown}; known: {sorted(GENRES)}")
        self._validate_languages()

    @property
    def classes(self) -> tuple[str, ...]:
        """The label classes of the world: each target's code as the pipeline reads it, then ``ot``."""
        return tuple(self.target_classes) + (OTHER_LANGUAGE,)

    @property
    def target_classes(self) -> tuple[str, ...]:
        """The targets as normalised codes (espeak's ``cmn`` is ``zh``), in order."""
        return tuple(language_code(t) or t for t in self.targets)

    def _validate_languages(self) -> None:
        from lid_spark.tools.synth.espeak import available_voices
        from lid_spark.tools.synth.lexicon import vocabulary

        targets, others = self.targets, self.other_languages
        if not targets or len(set(targets)) != len(targets):
            raise ParameterError(f"synth.targets needs one or more distinct languages, got {list(targets)!r}")
        if len(set(self.target_classes)) != len(targets):
            raise ParameterError(f"synth.targets names one language twice (as codes {list(self.target_classes)})")
        if len(set(others)) < 2:
            raise ParameterError(f"synth.other_languages needs at least 2 distinct languages, got {list(others)!r}")
        overlap = sorted(set(others) & set(targets)) + sorted(
            {language_code(o) for o in others} & set(self.target_classes) - set(targets))
        if overlap:
            raise ParameterError(f"synth.other_languages and synth.targets must not overlap: {overlap} in both "
                                 "(a target sung as an 'other' language would be labelled two ways)")
        voices = available_voices()
        for key, languages in (("targets", targets), ("other_languages", others)):
            missing = sorted(set(languages) - voices)
            if missing:
                raise ParameterError(f"synth.{key} has languages without an espeak-ng voice: {missing} (the voices "
                                     "are espeak-ng's; `espeak-ng --voices` lists them)")
            for language in languages:
                vocabulary(language)   # ParameterError when CLDR has no words to sing in it
