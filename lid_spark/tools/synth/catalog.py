"""Who sings what: the catalog plan (artists, voices, genres, languages) as vectorised numpy.

Every draw is *prefix-stable*: track ``i``'s plan depends only on the seed and ``i`` (never on
the catalog size), so a track sounds the same in a 30-track test world and in a 10^6-track one.
Classes (``synth.targets`` then ``ot``) are dealt in blocks of one track of each class, shuffled, so labels
are balanced by construction; inside a class, consecutive tracks belong to the same artist for
a geometric number of songs.

Artists draw their voice (espeak-ng variant, base pitch, speed, vibrato) independently of their
language, so a model that memorises a voice learns the artist, not the language; their genre
depends on their language only partly (``genre_language_affinity``).

Example
-------
>>> from lid_spark.tools.synth.params import SynthParams
>>> plan = catalog_plan(SynthParams.from_any({"tracks": 22}))
>>> sorted(plan["label_class"].value_counts().to_dict().values())[0] >= 1
True
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from lid_spark import OTHER_LANGUAGE
from lid_spark.tools.synth.params import SynthParams
from lid_spark.tools.voices import LEGACY_WORLD_VARIANTS, voice_split

# Stream tags: each kind of draw has its own random stream (seed, tag, ...).
_BLOCKS, _ARTIST_SIZES, _ARTISTS, _TRACKS, _STYLES = 1, 2, 3, 4, 5
AUDIO_STREAM = 6
USERS_STREAM = 7
PLAYS_STREAM = 8

# Genres a language's music leans to (the rest of the probability mass is spread uniformly).
GENRE_LEANING = {
    "de": ("electronic", "rock"), "en": ("pop", "rock", "hiphop"), "es": ("latin", "pop"),
    "fr": ("ballad", "folk", "electronic"), "hi": ("filmi", "pop"), "it": ("ballad", "pop"),
    "ja": ("jpop", "electronic"), "pa": ("filmi", "hiphop"), "ta": ("filmi", "folk"), "te": ("filmi", "electronic"),
    "ru": ("rock", "electronic"), "ar": ("folk", "latin"), "ko": ("jpop", "hiphop"), "cmn": ("ballad", "jpop"),
    "pt": ("latin", "folk"), "nl": ("electronic", "pop"), "tr": ("folk", "filmi"), "sv": ("pop", "electronic"),
    "bn": ("filmi", "folk"), "el": ("folk", "latin"), "pl": ("rock", "folk"), "id": ("pop", "ballad"),
}


def world_variants(p: SynthParams) -> np.ndarray:
    """The espeak-ng variants the world's singers draw from: those of the ``synth.voices`` split
    (:mod:`lid_spark.tools.voices`) that can sing a melody, espeak-ng's plain voice left out, or
    for ``legacy`` the twelve of the first worlds."""
    if p.voices == "legacy":
        return np.array(LEGACY_WORLD_VARIANTS, dtype=object)
    return np.array([v for v in voice_split(p.voices).sung_variants if v is not None], dtype=object)


def label_classes(languages, p: SynthParams) -> np.ndarray:
    """The label class of sung espeak languages: the target's normalised code (``cmn`` -> ``zh``), else ``ot``."""
    classes = dict(zip(p.targets, p.target_classes))
    return np.array([classes.get(lang, OTHER_LANGUAGE) for lang in languages], dtype=object)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for one stream, e.g. ``rng_for(seed, AUDIO_STREAM, track_index)``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def track_id(index: int | np.ndarray):
    """``t0000042``: ids sort like indices up to 10^7 tracks."""
    if isinstance(index, (int, np.integer)):
        return f"t{int(index):07d}"
    return np.char.add("t", np.char.zfill(np.asarray(index).astype(str), 7))


def market_style(seed: int, language: str) -> dict:
    """A market's (language's) production signature: tilt, two EQ boosts, echo, favourite scale.

    Regional scenes sound different beyond genre (studios, mastering, signature instruments,
    favourite modes); this lets a timbre-only model beat chance without making it trivial.
    """
    from lid_spark.tools.synth.music import SCALES

    key = int.from_bytes(hashlib.blake2b(language.encode(), digest_size=4).digest(), "big")
    u = rng_for(seed, _STYLES, key).random(7)
    scales = sorted(SCALES)
    return {"tilt": float(2 * u[0] - 1), "echo": float(0.4 * u[1]), "echo_seconds": float(0.1 + 0.25 * u[2]),
            "scale": scales[int(u[3] * len(scales))],
            # boost centres log-uniform over 200 Hz .. 5 kHz
            "boosts": ((float(200 * 25 ** u[4]), 2.0), (float(200 * 25 ** u[5]), 1.0 + u[6]))}


# Where each sung language's records are mostly released: ISO 3166-1 alpha-2 countries and the
# share of that language's artists based there. The ``market`` column of the tracks table.
MARKET_COUNTRIES = {
    "de": (("DE", 0.7), ("AT", 0.15), ("CH", 0.15)), "en": (("US", 0.6), ("GB", 0.4)),
    "es": (("MX", 0.45), ("ES", 0.3), ("AR", 0.25)), "fr": (("FR", 0.75), ("CA", 0.15), ("BE", 0.1)),
    "hi": (("IN", 1.0),), "it": (("IT", 1.0),), "ja": (("JP", 1.0),), "pa": (("IN", 0.8), ("CA", 0.1), ("GB", 0.1)),
    "ta": (("IN", 0.8), ("LK", 0.2)), "te": (("IN", 1.0),),
    "ru": (("RU", 1.0),), "ar": (("EG", 0.4), ("SA", 0.35), ("AE", 0.25)), "ko": (("KR", 1.0),),
    "cmn": (("CN", 0.7), ("TW", 0.3)), "pt": (("BR", 0.75), ("PT", 0.25)), "nl": (("NL", 0.7), ("BE", 0.3)),
    "tr": (("TR", 1.0),), "sv": (("SE", 1.0),), "bn": (("BD", 0.6), ("IN", 0.4)), "el": (("GR", 1.0),),
    "pl": (("PL", 1.0),), "id": (("ID", 1.0),),
}
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 "unknown or unspecified": a language missing from MARKET_COUNTRIES


def market_country(language: str, artist_id: str) -> str:
    """The country an artist releases their ``language`` records in (ISO 3166-1 alpha-2).

    Drawn from ``MARKET_COUNTRIES[language]`` by a hash of (artist, language), not from a random
    stream, so adding it changed no other draw; an artist keeps one country per language.

    Example
    -------
    >>> market_country("ja", "ar0123456789")
    'JP'
    >>> market_country("en", "ar0123456789") in ("US", "GB")
    True
    """
    choices = MARKET_COUNTRIES.get(language)
    if not choices:
        return UNKNOWN_COUNTRY
    digest = hashlib.blake2b(f"{artist_id}:{language}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2.0 ** 64
    cumulative = 0.0
    for country, share in choices:
        cumulative += share
        if u < cumulative:
            return country
    return choices[-1][0]


def track_markets(plan: pd.DataFrame) -> np.ndarray:
    """Each track's market country: that of its sung language (instrumentals: the artist's language)."""
    pairs = pd.DataFrame({"language": np.where(plan["is_instrumental"], plan["artist_language"], plan["language"]),
                          "artist_id": plan["artist_id"].to_numpy()})
    # One hash per (artist, language): artists have a few songs each.
    unique = pairs.drop_duplicates()
    unique = unique.assign(market=[market_country(lang, artist) for lang, artist in
                                   zip(unique["language"], unique["artist_id"])])
    return pairs.merge(unique, on=["language", "artist_id"], how="left")["market"].to_numpy(dtype=object)


def genre_probabilities(language: str, genres: tuple[str, ...], affinity: float) -> np.ndarray:
    """p(genre | language): ``affinity`` of the mass on the language's leaning genres, the rest uniform."""
    uniform = np.full(len(genres), 1.0 / len(genres))
    leaning = np.array([g in GENRE_LEANING.get(language, ()) for g in genres], dtype=float)
    if leaning.sum() == 0:
        return uniform
    return (1 - affinity) * uniform + affinity * leaning / leaning.sum()


def _another_language(language: np.ndarray, u: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """For each row, a language from ``choices`` picked by uniform ``u``, never equal to ``language``."""
    pick = (u * len(choices)).astype(int)
    other = choices[pick]
    clash = other == language
    other[clash] = choices[(pick[clash] + 1) % len(choices)]
    return other


def _artist_table(p: SynthParams, cls: int, n_artists: int) -> pd.DataFrame:
    """Attributes of the first ``n_artists`` artists of class ``cls`` (prefix-stable)."""
    u = rng_for(p.seed, _ARTISTS, cls).random((n_artists, 10))
    variants = world_variants(p)
    voices = tuple(p.targets) + (OTHER_LANGUAGE,)   # the class's espeak voice (ot: one of the others)
    others = p.other_languages
    if voices[cls] == OTHER_LANGUAGE:
        language = np.array(others)[(u[:, 0] * len(others)).astype(int)]
    else:
        language = np.full(n_artists, voices[cls])
    # A second language for a few artists: any class's language except their own.
    second = _another_language(language, u[:, 6], np.array(tuple(p.targets) + tuple(others)))
    bilingual = u[:, 5] < p.bilingual_artist_share
    genres = np.array(p.genres)
    genre = np.empty(n_artists, dtype=object)
    for lang in np.unique(language):
        rows = language == lang
        cdf = np.cumsum(genre_probabilities(lang, p.genres, p.genre_language_affinity))
        genre[rows] = genres[np.minimum(np.searchsorted(cdf, u[rows, 4]), len(genres) - 1)]
    artist_id = [("ar" + hashlib.blake2b(f"{p.seed}:{cls}:{j}".encode(), digest_size=5).hexdigest())
                 for j in range(n_artists)]
    return pd.DataFrame({
        "artist_id": artist_id,
        "artist_language": language,
        "artist_second_language": np.where(bilingual, second, None),
        "variant": variants[(u[:, 1] * len(variants)).astype(int)],
        "base_pitch": (35 + 40 * u[:, 2]).astype(int),
        "rate": (115 + 55 * u[:, 3]).astype(int),
        "artist_genre": genre,
        "vibrato_hz": 4.5 + 2.0 * u[:, 7],
        "vibrato_depth": 0.01 + 0.025 * u[:, 8],
    })


def catalog_plan(p: SynthParams) -> pd.DataFrame:
    """One row per track: ids, artist and voice, sung language(s), label class, genre, flags.

    Columns: track_index, track_id, artist_id, language (sung, espeak code), label_class (one of
    ``p.classes``: the target's code, or ot), second_language (or None), is_instrumental, genre,
    variant, base_pitch, rate, vibrato_hz, vibrato_depth, artist_language.
    """
    n = p.tracks
    n_classes = len(p.classes)
    n_blocks = (n + n_classes - 1) // n_classes
    # One shuffled round of the classes per block: balanced labels, no class visible in the index.
    perms = np.argsort(rng_for(p.seed, _BLOCKS).random((n_blocks, n_classes)), axis=1)
    index = np.arange(n)
    cls = perms.reshape(-1)[:n]
    per_class_index = index // n_classes
    artists = []
    artist_row = np.empty(n, dtype=np.int64)
    offset = 0
    for c in range(n_classes):
        rows = np.flatnonzero(cls == c)
        sizes = rng_for(p.seed, _ARTIST_SIZES, c).geometric(1.0 / p.tracks_per_artist, size=n_blocks + 1)
        ends = np.cumsum(sizes)
        j = np.searchsorted(ends, per_class_index[rows], side="right")
        n_artists = int(j.max()) + 1 if rows.size else 0
        artists.append(_artist_table(p, c, n_artists))
        artist_row[rows] = offset + j
        offset += n_artists
    artist = pd.concat(artists, ignore_index=True).iloc[artist_row].reset_index(drop=True)

    u = rng_for(p.seed, _TRACKS).random((n, 6))
    bilingual_artist = artist["artist_second_language"].notna().to_numpy()
    sings_second = bilingual_artist & (u[:, 1] < 0.4)
    language = np.where(sings_second, artist["artist_second_language"].to_numpy(), artist["artist_language"].to_numpy())
    song_second = _another_language(language, u[:, 3], np.array(tuple(p.targets) + tuple(p.other_languages)))
    second_language = np.where(u[:, 2] < p.bilingual_song_share, song_second, None)
    is_instrumental = u[:, 0] < p.instrumental_share
    second_language = np.where(is_instrumental, None, second_language)
    # Songs mostly keep the artist's genre; some stray to one their language leans to.
    genres = np.array(p.genres)
    genre = artist["artist_genre"].to_numpy().copy()
    stray = u[:, 4] < 0.2
    for lang in np.unique(language[stray]):
        rows = stray & (language == lang)
        cdf = np.cumsum(genre_probabilities(lang, p.genres, p.genre_language_affinity))
        genre[rows] = genres[np.minimum(np.searchsorted(cdf, u[rows, 5]), len(genres) - 1)]
    label_class = label_classes(language, p)
    return pd.DataFrame({
        "track_index": index,
        "track_id": track_id(index),
        "artist_id": artist["artist_id"].to_numpy(),
        "language": language,
        "label_class": label_class,
        "second_language": second_language,
        "is_instrumental": is_instrumental,
        "genre": genre,
        "variant": artist["variant"].to_numpy(),
        "base_pitch": artist["base_pitch"].to_numpy(),
        "rate": artist["rate"].to_numpy(),
        "vibrato_hz": artist["vibrato_hz"].to_numpy(),
        "vibrato_depth": artist["vibrato_depth"].to_numpy(),
        "artist_language": artist["artist_language"].to_numpy(),
    })
