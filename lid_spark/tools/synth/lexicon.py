"""Native-script vocabularies per language, drawn from the CLDR data that ``babel`` ships.

CLDR names languages, territories, scripts, currencies, units, months and weekdays in each
language's own script: about a thousand or more real words per language, enough for lyrics
whose phonetics are those of the language (espeak-ng then reads them natively).

Example
-------
>>> words = vocabulary("ta")
>>> len(words) > 500
True
"""

from __future__ import annotations

import functools
import re
import unicodedata

from lid_spark.errors import ParameterError

# Word characters: letters and combining marks of any script (Devanagari, Gurmukhi, Tamil, ...).
_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|[\u0300-\u036f\u0900-\u0dff\u3099\u309a])*", re.UNICODE)
# Scripts written without spaces: CLDR names are then whole words already.
_UNSPACED = {"ja", "cmn", "zh", "yue", "th", "my"}
_BABEL_LOCALE = {"cmn": "zh", "yue": "zh_Hant"}


def _texts(locale) -> list[str]:
    texts: list[str] = []
    for mapping in (locale.languages, locale.territories, locale.scripts, locale.currencies):
        texts.extend(mapping.values())
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            try:
                texts.extend(locale.months[context][width].values())
                texts.extend(locale.days[context][width].values())
            except KeyError:
                pass
    units = locale._data.get("unit_display_names", {})
    for entry in units.values():
        if isinstance(entry, dict):
            texts.extend(str(v) for v in entry.values() if isinstance(v, str))
    return texts


@functools.cache
def _words(language: str) -> frozenset[str]:
    """All native-script words CLDR gives for ``language`` (before removing shared ones)."""
    from babel import Locale, UnknownLocaleError

    try:
        locale = Locale.parse(_BABEL_LOCALE.get(language, language))
    except (UnknownLocaleError, ValueError):
        raise ParameterError(f"no CLDR data for language {language!r}") from None
    words: set[str] = set()
    for text in _texts(locale):
        text = unicodedata.normalize("NFC", text)
        if language in _UNSPACED:
            candidates = [t for t in re.split(r"[\s\(\)（）・,、]+", text) if t]
        else:
            candidates = _TOKEN.findall(text)
        for word in candidates:
            if any(ch.isdigit() or ch in "{}%" for ch in word):
                continue
            if len(word) >= 2 and not (word.isascii() and language not in _LATIN_SCRIPT):
                words.add(word.lower())
    return frozenset(words)


@functools.cache
def vocabulary(language: str) -> tuple[str, ...]:
    """Distinct native-script words of ``language`` (ISO 639 code), sorted for determinism.

    Latin-script languages share many proper nouns in CLDR ("aceh", "acholi", ...); words that
    also occur in another Latin-script reference language are dropped, so every language's
    lyrics are its own words (from about 260 for Indonesian to 880 for Polish).
    """
    words = set(_words(language))
    if language in _LATIN_SCRIPT:
        for other in _LATIN_REFERENCE:
            if other != language:
                words -= _words(other)
    if len(words) < 200:
        raise ParameterError(f"CLDR gives too few words for {language!r} ({len(words)})")
    return tuple(sorted(words))


# Languages written in Latin script: for the others, Latin-script tokens are loanwords and skipped.
_LATIN_SCRIPT = {"de", "en", "es", "fr", "it", "nl", "pt", "sv", "pl", "tr", "id", "vi", "ro", "cs",
                 "fi", "hu", "da", "sw", "ms", "ca", "hr", "sk", "sl", "et", "lv", "lt", "af", "eu", "ga", "cy"}
# Latin-script languages whose shared words are removed from each other's vocabularies.
_LATIN_REFERENCE = ("de", "en", "es", "fr", "it", "pt", "nl", "sv", "pl", "tr", "id")
