"""Language codes as people write them, read into one code; the classes of a catalog.

Labels arrive as ``EN``, ``en-US``, ``eng``, ``English``, ``pt_BR``, ``zh-Hant`` or ``en: English``
(the VoxLingua107 label style). :func:`normalise_language` reads each through ``langcodes``
(BCP 47 and ISO 639, with the CLDR language names) into one code: the ISO 639-1 code where one
exists, else the ISO 639-3 code. Region and script are dropped (``pt_BR`` -> ``pt``,
``zh-Hant`` -> ``zh``). Individual languages that CLDR aliases to their macrolanguage take the
macrolanguage's code (``cmn`` -> ``zh``, ``arb`` -> ``ar``, ``pes`` -> ``fa``, ``zsm`` -> ``ms``,
``swh`` -> ``sw``); the others keep their own (``yue`` stays ``yue``).

Three codes are reserved and never a target: ``ot`` (any other language: the catch-all class),
``zxx`` (ISO 639-2 "no linguistic content": instrumental tracks) and ``und`` (undetermined).

Example
-------
>>> [normalise_language(t)[0] for t in ["EN", "en-US", "eng", "English", "pt_BR", "zh-Hant", "cmn"]]
['en', 'en', 'en', 'en', 'pt', 'zh', 'zh']
>>> normalise_language("xx-klingon?")
(None, 'unreadable')
>>> language_classes(["pt_BR", "ko"])
('pt', 'ko', 'ot')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from lid_spark import INSTRUMENTAL, OTHER_LANGUAGE
from lid_spark.errors import ParameterError

UNDETERMINED = "und"
RESERVED = (OTHER_LANGUAGE, INSTRUMENTAL, UNDETERMINED)

# Why a label was not read as a language (the keys of the per-reason counts).
MISSING = "missing"              # null or blank
UNREADABLE = "unreadable"        # neither a language tag nor a language name langcodes knows
NOT_A_LANGUAGE = "not_a_language"  # zxx (instrumental) or und (undetermined): no class to learn
REASONS = (MISSING, UNREADABLE, NOT_A_LANGUAGE)


@lru_cache(maxsize=65536)
def _normalise(text: str) -> tuple[str | None, str | None]:
    import langcodes

    if ":" in text:   # "en: English" (VoxLingua107 labels)
        text = text.split(":", 1)[0].strip()
    lowered = text.lower()
    if lowered in RESERVED:
        return (None, NOT_A_LANGUAGE) if lowered != OTHER_LANGUAGE else (OTHER_LANGUAGE, None)
    tag = text.replace("_", "-")
    code = None
    try:
        language = langcodes.Language.get(langcodes.standardize_tag(tag, macro=True))
        if language.is_valid() and language.language:
            code = language.language
    except (ValueError, LookupError):
        pass
    if code is None:
        try:   # a language name, in English or in the language itself ("English", "Português")
            code = langcodes.find(text).language
        except (ValueError, LookupError):
            return None, UNREADABLE
    code = code.lower()
    if code in (INSTRUMENTAL, UNDETERMINED):
        return None, NOT_A_LANGUAGE
    return code, None


def normalise_language(value) -> tuple[str | None, str | None]:
    """One code for a label as written: ``(code, None)``, or ``(None, reason)`` when it cannot be read.

    Parameters
    ----------
    value : str or None
        A language tag (``en``, ``EN``, ``en-US``, ``pt_BR``, ``eng``, ``zh-Hant``), a language
        name (``English``, ``Deutsch``), ``"<code>: <name>"``, or the catch-all ``ot``.

    Returns
    -------
    (code, reason)
        ``code`` is ISO 639-1 where it exists, else ISO 639-3 (``ot`` stays ``ot``); ``reason`` is
        one of :data:`REASONS` when ``code`` is None.

    Example
    -------
    >>> normalise_language("Deutsch"), normalise_language("  "), normalise_language("zxx")
    (('de', None), (None, 'missing'), (None, 'not_a_language'))
    """
    if value is None or (isinstance(value, float) and value != value):
        return None, MISSING
    text = str(value).strip()
    if not text:
        return None, MISSING
    return _normalise(text)


def language_code(value) -> str | None:
    """:func:`normalise_language`'s code alone (None when it cannot be read)."""
    return normalise_language(value)[0]


def parse_targets(values: Iterable, key: str = "classifier.languages") -> tuple[str, ...]:
    """Target languages from a setting: each read by :func:`normalise_language`, order kept.

    Raises ParameterError naming ``key`` for an unreadable entry, a reserved code or a duplicate
    (two spellings of one language).

    Example
    -------
    >>> parse_targets(["pt_BR", "KO", "Russian"])
    ('pt', 'ko', 'ru')
    """
    out: list[str] = []
    seen: dict[str, str] = {}
    for value in values:
        code, reason = normalise_language(value)
        if code is None or code == OTHER_LANGUAGE:
            why = "is reserved (ot: any other language; zxx: instrumental; und: undetermined)" \
                if reason in (None, NOT_A_LANGUAGE) else "is not a language code or name langcodes can read"
            raise ParameterError(f"{key}: {value!r} {why}; give ISO 639-1/639-3 codes such as pt, ko, yue")
        if code in seen:
            raise ParameterError(f"{key}: {value!r} and {seen[code]!r} are the same language ({code})")
        seen[code] = value
        out.append(code)
    return tuple(out)


def language_classes(targets: Sequence[str]) -> tuple[str, ...]:
    """The classifier's classes: the targets (normalised, in order), then ``ot``."""
    return parse_targets(targets) + (OTHER_LANGUAGE,)


def class_of(code: str | None, targets: Iterable[str]) -> str | None:
    """The class of a normalised code: itself when a target, else ``ot`` (None stays None)."""
    if code is None:
        return None
    return code if code in set(targets) else OTHER_LANGUAGE


def choose_targets(configured: Sequence[str], label_counts: Mapping[str, int], min_tracks: int) -> tuple[str, ...]:
    """The target languages of a catalog.

    Parameters
    ----------
    configured : ``classifier.languages``: when not empty, these (normalised, in order)
    label_counts : labelled tracks per normalised code (``ot`` included or not: it is never a target)
    min_tracks : ``classifier.min_tracks_per_language``: with ``configured`` empty, every code with
        at least this many labelled tracks is a target (most tracks first, ties by code)

    Example
    -------
    >>> choose_targets([], {"pt": 40, "ko": 12, "sv": 3, "ot": 90}, min_tracks=10)
    ('pt', 'ko')
    """
    if configured:
        return parse_targets(configured)
    ranked = sorted(((n, c) for c, n in label_counts.items() if c not in RESERVED and n >= min_tracks),
                    key=lambda item: (-item[0], item[1]))
    return tuple(code for _, code in ranked)


def collapse_scores(scores: Mapping[str, float], classes: Sequence[str]) -> list[float]:
    """Per-language scores (a ``spoken_lid_scores`` map) as the probability of each class.

    A target takes its own score; ``ot`` takes the mass of every other key (a map written over
    classes, with an ``ot`` key of its own, reads the same).

    Example
    -------
    >>> collapse_scores({"pt": 0.5, "ko": 0.25, "en": 0.125, "ja": 0.125}, ("pt", "ko", "ot"))
    [0.5, 0.25, 0.25]
    """
    targets = [c for c in classes if c != OTHER_LANGUAGE]
    chosen = set(targets)
    rest = float(sum(float(v) for k, v in scores.items() if k not in chosen))
    return [rest if c == OTHER_LANGUAGE else float(scores.get(c, 0.0)) for c in classes]
