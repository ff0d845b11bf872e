"""The synthetic world: determinism, the data contract, balance, real language and singing differences,
knob validation and the bounded-memory sessions-only mode."""

from __future__ import annotations

import json
import tracemalloc
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from lid_spark import INSTRUMENTAL, LANGUAGE_CLASSES, TARGET_LANGUAGES
from lid_spark.config import load_config
from lid_spark.contract import conform
from lid_spark.errors import ParameterError
from lid_spark.tools.synth.catalog import MARKET_COUNTRIES, catalog_plan
from lid_spark.tools.synth.dsp import flat_f0, mfcc_stats
from lid_spark.tools.synth.lexicon import vocabulary
from lid_spark.tools.synth.params import SynthParams
from lid_spark.tools.synth.render import render_track
from lid_spark.tools.synth.singing import Voice, sing_line, voice_range_hz
from lid_spark.tools.synth.world import TINY_WORLD, _render_and_write, tiny_world, write_sessions_only
from lid_spark.tools.voices import LEGACY_WORLD_VARIANTS


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("world"), write_stems=True, bilingual_song_share=0.2)


# --- determinism -----------------------------------------------------------------------------------

def test_espeak_output_does_not_depend_on_call_history():
    from lid_spark.tools.synth.espeak import speak

    first = speak("hola amigo", "es", pitch=40, pitch_range=0, variant="f3")
    speak("bonjour tout le monde", "fr", variant="m1")
    speak("hola amigo", "es", pitch=40, pitch_range=0, variant="f3")
    assert np.array_equal(first, speak("hola amigo", "es", pitch=40, pitch_range=0, variant="f3"))


@pytest.mark.slow
def test_track_audio_depends_only_on_seed_and_index():
    small = SynthParams.from_any(TINY_WORLD, tracks=11)
    large = SynthParams.from_any(TINY_WORLD, tracks=44)
    row_small = catalog_plan(small).iloc[7].to_dict()
    row_large = catalog_plan(large).iloc[7].to_dict()
    assert row_small == row_large
    a = render_track(row_small, small)
    b = render_track(row_large, large)
    assert np.array_equal(a.mix, b.mix) and np.array_equal(a.vocals, b.vocals)
    other_seed = SynthParams.from_any(TINY_WORLD, tracks=11, seed=8)
    c = render_track(catalog_plan(other_seed).iloc[7].to_dict(), other_seed)
    assert not np.array_equal(a.mix, c.mix)


@pytest.mark.slow
def test_world_files_are_reproducible(world, tmp_path):
    plan = catalog_plan(world.params)
    row = plan.iloc[4].to_dict()
    _render_and_write(row, world.params, str(tmp_path), None)
    again = (tmp_path / f"{row['track_id']}.flac").read_bytes()
    assert again == (world.audio_dir / f"{row['track_id']}.flac").read_bytes()
    from lid_spark.tools.synth.sessions import ListeningModel
    from lid_spark.tools.synth.world import _markets

    plays = pq.read_table(world.plays_path)
    model = ListeningModel.fit(_markets(plan), world.params)
    redrawn = pd.concat([c.to_arrow().to_pandas() for c in model.plays(world.params.users)], ignore_index=True)
    pd.testing.assert_frame_equal(plays.to_pandas(), redrawn)


# --- contract, balance, layout ----------------------------------------------------------------------

@pytest.mark.slow
def test_world_meets_the_input_contract(spark, world):
    tracks = conform(spark.read.parquet(str(world.tracks_path)), "tracks").toPandas()
    plays = conform(spark.read.parquet(str(world.plays_path)), "plays")
    labels = conform(spark.read.parquet(str(world.labels_path)), "labels").toPandas()
    truth = pd.read_parquet(world.truth_path)
    assert dict(plays.dtypes)["ts"] == "timestamp"
    plays = plays.toPandas()
    assert len(tracks) == world.n_tracks == 33 and tracks["track_id"].is_unique
    assert set(plays["track_id"]) <= set(tracks["track_id"]) and len(plays) == world.n_plays
    assert 0 < plays["session_id"].isna().mean() < 1          # some plays only have timestamps
    # Labels: every sung track once, with its dominant class; instrumentals have no row.
    instrumental = set(truth.loc[truth["is_instrumental"], "track_id"])
    assert set(labels["track_id"]) == set(tracks["track_id"]) - instrumental
    assert set(labels["language"]) <= set(LANGUAGE_CLASSES)
    assert (truth.loc[truth["is_instrumental"], "language"] == INSTRUMENTAL).all()
    merged = labels.merge(truth, on="track_id", suffixes=("", "_truth"))
    assert (merged["language"] == merged["language_truth"]).all()
    # Audio: absolute paths to mono FLAC files of the stated duration.
    for row in tracks.itertuples():
        info = sf.info(row.audio_uri)
        assert row.audio_uri.startswith("/") and info.channels == 1 and info.samplerate == 16000
        assert info.frames == round(row.duration_s * 16000)


def _check_markets(tracks: pd.DataFrame, truth: pd.DataFrame, plan: pd.DataFrame) -> None:
    """Every track's market is a country of its sung language (instrumentals: the artist's language)."""
    rows = tracks.merge(truth[["track_id", "sung_language", "is_instrumental"]], on="track_id") \
        .merge(plan[["track_id", "artist_language"]], on="track_id")
    assert len(rows) == len(tracks) and rows["market"].notna().all()
    language = rows["sung_language"].where(~rows["is_instrumental"], rows["artist_language"])
    allowed = [{c for c, _ in MARKET_COUNTRIES[lang]} for lang in language]
    assert all(m in ok for m, ok in zip(rows["market"], allowed))
    # One country per artist and language.
    assert rows.assign(language=language).groupby(["artist_id", "language"])["market"].nunique().max() == 1


@pytest.mark.slow
def test_tracks_carry_a_market_country_of_their_language(spark, world):
    tracks = conform(spark.read.parquet(str(world.tracks_path)), "tracks").toPandas()
    assert dict(conform(spark.read.parquet(str(world.tracks_path)), "tracks").dtypes)["market"] == "string"
    _check_markets(tracks, pd.read_parquet(world.truth_path), catalog_plan(world.params))


def test_sessions_only_tracks_carry_markets_too(tmp_path):
    world = write_sessions_only(tmp_path, {"tracks": 1100, "users": 200})
    tracks = pd.read_parquet(world.tracks_path)
    _check_markets(tracks, pd.read_parquet(world.truth_path), catalog_plan(world.params))
    # Several countries for a language released in several (en: US and GB).
    en = tracks.merge(pd.read_parquet(world.truth_path), on="track_id").query("sung_language == 'en'")
    assert set(en["market"]) == {"US", "GB"}


@pytest.mark.slow
def test_stems_sum_to_the_mix(world):
    truth = pd.read_parquet(world.truth_path)
    sung = truth.loc[~truth["is_instrumental"], "track_id"].iloc[0]
    mix, _ = sf.read(world.audio_dir / f"{sung}.flac")
    vocals, _ = sf.read(world.stems_dir / f"{sung}.vocals.flac")
    backing, _ = sf.read(world.stems_dir / f"{sung}.accompaniment.flac")
    assert np.max(np.abs(vocals + backing - mix)) < 3 / 32768     # 16-bit rounding of three files
    assert np.std(vocals) > 0.01 and np.std(backing) > 0.01


@pytest.mark.slow
def test_report_has_speed_balance_baselines_and_gallery(world):
    summary = json.loads((world.report_dir / "synth_report.json").read_text())
    assert summary["speed"]["audio_seconds_per_second"] > 0
    assert sum(summary["label_balance"].values()) == world.n_labelled
    assert set(summary["baselines"]) >= {"chance (class priors)"} and len(summary["baselines"]) == 3
    assert (world.report_dir / "gallery.png").stat().st_size > 10_000
    assert "audio seconds per second" in (world.report_dir / "synth_report.md").read_text()


def test_demo_size_labels_are_balanced_and_voices_do_not_give_the_language_away():
    plan = catalog_plan(SynthParams())
    sung = plan[~plan["is_instrumental"]]
    counts = sung["label_class"].value_counts()
    assert set(counts.index) == set(LANGUAGE_CLASSES) and counts.min() >= 40
    assert counts.max() - counts.min() <= 12
    assert sung.loc[sung["label_class"] == "ot", "language"].nunique() >= 8
    # Voices are drawn independently of language: every class has male and female artists,
    # and mean base pitch differs little between classes.
    assert set(plan["variant"].dropna()) <= set(LEGACY_WORLD_VARIANTS)   # the default world's twelve
    big = catalog_plan(SynthParams(tracks=5500, voices="all"))
    per_class = big.groupby("label_class")
    # high voices (espeak-ng's F0 at pitch setting 50 above 140 Hz: f1..f5, Alicia, steph, ...) in every class
    high = {v: voice_range_hz(Voice("en", v, 50))[1] > 140 for v in big["variant"].unique()}
    share = big["variant"].map(high)
    assert 0.1 < share.mean() < 0.6
    assert (share.groupby(big["label_class"]).mean() - share.mean()).abs().max() < 0.1
    assert big["variant"].nunique() >= 90   # synth.voices: all, every variant that can sing
    assert per_class["base_pitch"].mean().std() < 2.5
    # Genre depends on language, but only partly: no class has a single genre.
    assert (per_class["genre"].agg(lambda g: g.value_counts(normalize=True).iloc[0]) < 0.6).all()


@pytest.mark.slow
def test_bilingual_songs_switch_language_late(world):
    truth = pd.read_parquet(world.truth_path)
    bilingual = truth[truth["second_language"].notna()]
    assert len(bilingual) >= 1
    plan = catalog_plan(world.params).set_index("track_id")
    row = plan.loc[bilingual["track_id"].iloc[0]].to_dict() | {"track_id": bilingual["track_id"].iloc[0]}
    song = render_track(row, world.params)
    langs = song.note_languages
    first = langs.index(row["second_language"]) if row["second_language"] in langs else len(langs)
    # the dominant language comes first and lasts longer
    assert langs[0] == row["language"] and first >= len(langs) / 2


# --- the languages really differ, the vocals are really sung -----------------------------------------

_SCRIPT = {"hi": "DEVANAGARI", "pa": "GURMUKHI", "ta": "TAMIL", "te": "TELUGU", "de": "LATIN", "en": "LATIN",
           "es": "LATIN", "fr": "LATIN", "it": "LATIN"}


def test_lyrics_are_in_each_language_own_script_and_words():
    for lang, script in _SCRIPT.items():
        letters = [ch for w in vocabulary(lang)[:300] for ch in w if ch.isalpha()]
        share = np.mean([unicodedata.name(ch, "").startswith(script) for ch in letters])
        assert share > 0.95, (lang, share)
    kana = [ch for w in vocabulary("ja")[:300] for ch in w]
    assert np.mean([unicodedata.name(ch, "").split()[0] in ("KATAKANA", "HIRAGANA", "CJK") for ch in kana]) > 0.9
    latin = {lang: set(vocabulary(lang)) for lang in ("de", "en", "es", "fr", "it")}
    for a in latin:
        for b in latin:
            if a < b:
                assert len(latin[a] & latin[b]) / len(latin[a] | latin[b]) < 0.25, (a, b)


@pytest.mark.slow
def test_same_singer_sounds_different_per_language():
    """Same voice, same melody, different words: MFCC statistics of two phrases of a language are
    nearest to each other far more often than chance (1 in 7)."""
    rng = np.random.default_rng(0)
    langs = ("en", "ja", "ta", "de", "hi", "fr", "es")
    melody = [60, 62, 64, 62, 60, 59, 57, 59, 60, 64] * 2
    first, second = [], []
    for lang in langs:
        words = list(rng.choice(vocabulary(lang), size=40, replace=False))
        for half, out in ((0, first), (1, second)):
            wave, _ = sing_line(words[half * 20:(half + 1) * 20], melody, Voice(lang, "m3", 50, 150),
                                beat=0.4, sample_rate=16000, hold_last_beats=0.0)
            out.append(mfcc_stats(wave, 16000))
    a, b = np.array(first), np.array(second)
    scale = np.concatenate([a, b]).std(axis=0) + 1e-9
    distance = np.linalg.norm((a[:, None] - b[None]) / scale, axis=2)
    assert (distance.argmin(axis=1) == np.arange(len(langs))).sum() >= 5


@pytest.mark.slow
def test_vocals_follow_the_melody_with_held_notes():
    voice = Voice("es", "f2", 55, 150)
    melody = [67, 64, 69, 65, 62]
    words = list(vocabulary("es")[300:305])
    wave, notes = sing_line(words, melody, voice, beat=0.5, sample_rate=16000, hold_last_beats=2.0)
    assert [n.midi for n in notes] == melody
    assert np.allclose([n.duration / 0.25 for n in notes], np.round([n.duration / 0.25 for n in notes]))
    for note in notes:
        a, b = int((note.start + 0.15 * note.duration) * 16000), int((note.start + 0.85 * note.duration) * 16000)
        sung = 69 + 12 * np.log2(flat_f0(wave[a:b], 16000, frame=1024) / 440)
        assert abs(sung - note.midi) < 0.5, (note, sung)
    # The final note is held: sustained voiced energy well past the spoken word, with vibrato.
    last = notes[-1]
    tail = wave[int((last.start + last.duration - 0.9) * 16000): int((last.start + last.duration - 0.1) * 16000)]
    assert np.sqrt(np.mean(tail ** 2)) > 0.05
    import librosa

    f0 = librosa.yin(tail, fmin=150, fmax=700, sr=16000, frame_length=1024, hop_length=80)
    cents = 1200 * np.log2(f0 / np.median(f0))
    assert 5 < np.std(cents) < 60          # vibrato: audible wobble, well under a semitone


def test_songs_are_sung_within_the_singers_reach(world):
    """Notes far above what espeak-ng reaches are resampled, which shifts the formants (chipmunk
    vowels): the melody lies around the voice's base pitch, so most notes need no such shift."""
    plan = catalog_plan(world.params)
    checked = 0
    for row in plan[~plan["is_instrumental"]].head(6).to_dict("records"):
        song = render_track(row, world.params)
        low, _, high = (69 + 12 * np.log2(hz / 440)
                        for hz in voice_range_hz(Voice(row["language"], row["variant"], int(row["base_pitch"]))))
        midis = np.array([n.midi for n in song.notes])
        assert np.mean((midis >= low - 2) & (midis <= high + 2)) >= 0.8, (row["track_id"], midis, low, high)
        checked += 1
    assert checked == 6


# --- knobs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("knob, value, words", [
    ("instrumental_share", 1.0, "synth.instrumental_share"),
    ("noise_play_share", 0.97, "synth.noise_play_share"),
    ("tracks", 0, "synth.tracks"),
    ("seconds", 0.5, "synth.seconds"),
    ("genres", ["polka"], "synth.genres"),
    ("other_languages", ["ru", "xx"], "synth.other_languages"),
    ("other_languages", ["ru", "en"], "synth.other_languages"),
    ("vocal_level_db", [3.0, -12.0], "synth.vocal_level_db"),
    ("sample_rate", 12345, "synth.sample_rate"),
    ("tracks_per_artist", 0.5, "synth.tracks_per_artist"),
    ("intro_seconds", [-1.0, 2.0], "synth.intro_seconds"),
    ("market_style", 1.5, "synth.market_style"),
])
def test_bad_knobs_are_rejected_naming_the_key(knob, value, words):
    with pytest.raises(ParameterError, match=words.replace(".", r"\.")):
        SynthParams.from_any({knob: value})


def test_unknown_and_mistyped_knobs_fail_at_config_load():
    with pytest.raises(ParameterError, match="synth.instrumental_shar"):
        load_config(overrides=["synth.instrumental_shar=0.1"])
    with pytest.raises(ParameterError, match="synth.tracks"):
        load_config(overrides=["synth.tracks=many"])
    with pytest.raises(ParameterError, match="synth.bogus"):
        SynthParams.from_any({"bogus": 1})


def test_job_rejects_bad_knob_before_writing(tmp_path):
    from lid_spark.jobs.synth import main

    with pytest.raises(ParameterError, match="synth.hub_share"):
        main(["--out", str(tmp_path / "w"), "synth.hub_share=2.0"])
    assert not (tmp_path / "w").exists()


# --- sessions ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sessions_only_writes_chunks_in_bounded_memory(spark, tmp_path):
    from lid_spark.jobs.synth import main

    common = ["--sessions-only", "--tracks", "3000", "--users", "4000", "synth.bot_session_plays=400",
              "synth.chunk_plays=40000"]
    tracemalloc.start()
    assert main(["--out", str(tmp_path / "small"), "--plays", "80000", *common]) == 0
    _, peak_small = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    assert main(["--out", str(tmp_path / "big"), "--plays", "400000", *common]) == 0
    _, peak_big = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    files = sorted((tmp_path / "big" / "plays").glob("*.parquet"))
    rows = [pq.read_metadata(f).num_rows for f in files]
    assert len(files) >= 8 and max(rows) < 2 * 40000
    assert 0.8 * 400000 < sum(rows) < 1.2 * 400000
    assert peak_big < 1.5 * peak_small            # 5x the plays, about the same memory
    plays = conform(spark.read.parquet(str(tmp_path / "big" / "plays")), "plays")
    tracks = conform(spark.read.parquet(str(tmp_path / "big" / "tracks")), "tracks")
    assert plays.join(tracks, "track_id", "left_anti").count() == 0
    assert spark.read.parquet(str(tmp_path / "big" / "labels")).count() == 3000 - pd.read_parquet(
        tmp_path / "big" / "truth")["is_instrumental"].sum()


def test_impossible_play_target_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="synth.plays=1000 is too few for synth.users=500"):
        write_sessions_only(tmp_path, {"tracks": 100, "users": 500, "plays": 1000})


def test_listeners_have_language_tastes_hubs_and_bots(tmp_path):
    world = write_sessions_only(tmp_path, {"tracks": 2200, "users": 1500, "bot_session_plays": 1500,
                                           "bot_share": 0.01})
    plays = pd.read_parquet(world.plays_path)
    truth = pd.read_parquet(world.truth_path)
    plan = catalog_plan(world.params)
    market = dict(zip(plan["track_id"], np.where(plan["is_instrumental"], plan["artist_language"], plan["language"])))
    plays["market"] = plays["track_id"].map(market)
    per_user = plays.groupby("user_id")
    top_share = per_user["market"].agg(lambda m: m.value_counts(normalize=True).iloc[0])
    sizes = per_user.size()
    humans = sizes[sizes < 1500].index
    assert top_share[humans].median() > 0.7          # most listeners keep to one language
    assert (top_share[humans] < 0.6).mean() > 0.05   # ... some mix two
    assert sizes.max() >= 1500                        # bots: absurdly long histories
    # Hubs: cross-language hits, played by listeners of many languages.
    listener_market = top_share.index.to_series().map(per_user["market"].agg(lambda m: m.value_counts().index[0]))
    plays["listener_market"] = plays["user_id"].map(listener_market)
    reach = plays[plays["user_id"].isin(humans)].groupby("track_id")["listener_market"].nunique()
    hubs = set(truth.loc[truth["is_hub"], "track_id"])
    assert reach[reach.index.isin(hubs)].median() >= 2 * reach[~reach.index.isin(hubs)].median()
    counts = plays["track_id"].value_counts()
    assert counts.iloc[0] > 10 * counts.median()     # popularity skew
    assert len(set(TARGET_LANGUAGES) - set(plays["market"])) == 0


def test_world_for_another_target_set(tmp_path):
    from lid_spark.contract import SYNTHETIC_PROVENANCE

    cfg = load_config([Path(__file__).parents[1] / "conf" / "examples" / "other_languages.yaml"])
    params = SynthParams.from_any(cfg, tracks=140)
    assert params.classes == ("pt", "ko", "ru", "ar", "tr", "nl", "ot")
    assert tuple(cfg.classifier.languages) == params.targets, "the example trains on the classes it builds"
    world = write_sessions_only(tmp_path, params, users=50)
    labels, truth = pd.read_parquet(world.labels_path), pd.read_parquet(world.truth_path)
    counts = labels["language"].value_counts()
    assert set(counts.index) == set(params.classes) and counts.max() - counts.min() <= 4   # balanced
    sung_as_other = set(truth.loc[truth["language"] == "ot", "sung_language"].dropna())
    assert sung_as_other and sung_as_other <= set(TARGET_LANGUAGES), "the paper's languages sing behind ot"
    assert (pd.read_parquet(world.tracks_path)["provenance"] == SYNTHETIC_PROVENANCE).all()
    # A target may not also be an "other" language; a language needs an espeak-ng voice.
    with pytest.raises(ParameterError, match="must not overlap: .*pt"):
        SynthParams.from_any({"targets": ["pt", "ko"], "other_languages": ["pt", "en"]})
    with pytest.raises(ParameterError, match=r"synth\.targets must be languages that synth\.other_languages"):
        load_config(overrides=["synth.targets=[ru, ko]"])
    with pytest.raises(ParameterError, match=r"synth\.targets has languages without an espeak-ng voice: \['xq'\]"):
        SynthParams.from_any({"targets": ["pt", "xq"], "other_languages": ["en", "de"]})
    # espeak's cmn is labelled zh, as the pipeline reads it.
    assert SynthParams.from_any({"targets": ["cmn", "ko"], "other_languages": ["en", "de"]}).classes == \
        ("zh", "ko", "ot")


def test_voice_split_covers_every_espeak_variant_and_a_held_out_world_uses_only_unheard_voices():
    from lid_spark.tools.synth.espeak import speak
    from lid_spark.tools.voices import STATEFUL_VARIANTS, UNPITCHED_VARIANTS, espeak_variants, voice_split

    training, held_out = voice_split("training"), voice_split("held_out")
    assert set(training.variants) | set(held_out.variants) == {None, *espeak_variants()} - set(STATEFUL_VARIANTS)
    # every variant of the split speaks the same samples whatever was spoken before
    first = {v: speak("bonjour tout le monde", "fr", variant=v) for v in voice_split("all").variants}
    for v in reversed(voice_split("all").variants):
        speak("salut", "fr", variant="m3", pitch=80)   # same language: a switch changes the output a little
        assert np.array_equal(speak("bonjour tout le monde", "fr", variant=v), first[v]), v
    assert set(training.variants).isdisjoint(held_out.variants)
    assert len(espeak_variants()) >= 100 and 0.15 < len(held_out.variants) / len(espeak_variants()) < 0.4
    # Klatt, whisper and robotic presets on both sides
    for family in ("klatt", "whisper", "robosoft"):
        assert any(str(v).startswith(family) for v in training.variants)
        assert any(str(v).startswith(family) for v in held_out.variants)
    plan = catalog_plan(SynthParams(tracks=300, voices="held_out"))
    assert set(plan["variant"]) <= set(held_out.variants) - set(UNPITCHED_VARIANTS)
    assert plan["variant"].nunique() >= 15
    with pytest.raises(ParameterError, match="synth.voices"):
        SynthParams(voices="unheard").validate()


def test_every_singing_variant_follows_the_pitch_setting():
    """The calibration's log-F0 line rises with the setting for every variant the world may draw."""
    from lid_spark.tools.synth.singing import pitch_calibration
    from lid_spark.tools.voices import voice_split

    for variant in voice_split("all").sung_variants:
        low, base, high = voice_range_hz(Voice("ta", variant, 50))
        assert 20 < low < base < high < 900, (variant, low, base, high)
        assert len(pitch_calibration("ta", variant)) >= 2
