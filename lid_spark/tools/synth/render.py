"""One track's audio: lyrics, melody, sung vocals, accompaniment and the mix, from its plan row.

A track is a pure function of its plan row, the knobs and its own random stream
``(seed, AUDIO_STREAM, track_index)``: the same track renders to the same samples whatever the
catalog size or the order (or process) it is rendered in.

Example
-------
>>> from lid_spark.tools.synth.params import SynthParams
>>> from lid_spark.tools.synth.catalog import catalog_plan
>>> p = SynthParams.from_any({"tracks": 11, "seconds": 6.0})
>>> song = render_track(catalog_plan(p).iloc[0].to_dict(), p)
>>> song.mix.shape
(96000,)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lid_spark.tools.synth.catalog import AUDIO_STREAM, market_style, rng_for
from lid_spark.tools.synth.dsp import level_gain
from lid_spark.tools.synth.lexicon import vocabulary
from lid_spark.tools.synth.music import MasteringStyle, accompaniment, get_genre, melody, plan_song
from lid_spark.tools.synth.params import SynthParams
from lid_spark.tools.synth.singing import Note, Voice, sing_line, voice_range_hz

_WORDS_PER_SONG = 14   # a song reuses a small set of words, like a chorus does


@dataclass
class RenderedTrack:
    """Samples (float32, mono) and what was sung, with times in seconds from the track start."""

    mix: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    notes: list[Note] = field(default_factory=list)
    note_languages: list[str] = field(default_factory=list)
    lyrics: str = ""
    vocal_level_db: float | None = None
    tempo: float = 0.0
    tonic_midi: int = 0
    vocal_seconds: float = 0.0


def render_track(row: dict, p: SynthParams) -> RenderedTrack:
    """Render the track described by a :func:`~lid_spark.tools.synth.catalog.catalog_plan` row."""
    rng = rng_for(p.seed, AUDIO_STREAM, int(row["track_index"]))
    sr = p.sample_rate
    n = int(round(p.seconds * sr))
    genre = get_genre(row["genre"])
    # Short tracks keep most of their length for singing: intro <= 1/4, outro <= 3/20 of the track.
    intro = min(float(rng.uniform(*p.intro_seconds)), 0.25 * p.seconds)
    outro = min(p.outro_seconds, 0.15 * p.seconds)
    level_db = float(rng.uniform(*p.vocal_level_db))
    vocals = np.zeros(n, dtype=np.float32)
    notes: list[Note] = []
    note_languages: list[str] = []
    lyric_lines: list[str] = []
    voice = Voice(row["language"], row["variant"], int(row["base_pitch"]), int(row["rate"]),
                  float(row["vibrato_hz"]), float(row["vibrato_depth"]))
    # The market's production signature, followed more or less closely by each record.
    style = market_style(p.seed, row["artist_language"] if row["is_instrumental"] else row["language"])
    strength = p.market_style
    mastering = MasteringStyle(
        tilt=float(np.clip(strength * style["tilt"] + rng.normal(0, 0.12), -0.95, 1.5)),
        boosts=tuple((centre * rng.uniform(0.95, 1.05), strength * gain * rng.uniform(0.75, 1.25))
                     for centre, gain in style["boosts"]),
        echo=float(strength * style["echo"] * rng.uniform(0.75, 1.25)), echo_seconds=style["echo_seconds"])
    scale = style["scale"] if rng.random() < 0.8 * strength else None
    if row["is_instrumental"]:
        song = plan_song(genre, rng, p.seconds, scale_name=scale)
    else:
        # The key suits the singer: the melody (tonic .. an octave up) is centred on the voice's base pitch.
        _, base_hz, _ = voice_range_hz(voice)
        song = plan_song(genre, rng, p.seconds, tonic_midi=int(round(69 + 12 * np.log2(base_hz / 440.0))) - 5,
                         scale_name=scale)
        end = p.seconds - outro
        second = row.get("second_language")
        switch_at = intro + 0.6 * (end - intro) if second else np.inf
        pools = {lang: rng.choice(vocabulary(lang), size=_WORDS_PER_SONG, replace=False)
                 for lang in ([row["language"]] + ([second] if second else []))}
        t = intro
        while t < end - 1.0:
            lang = second if t >= switch_at else row["language"]
            line_voice = voice if lang == row["language"] else Voice(lang, voice.variant, voice.base_pitch, voice.rate,
                                                                   voice.vibrato_hz, voice.vibrato_depth)
            words = [str(w) for w in rng.choice(pools[lang], size=int(rng.integers(3, 7)))]
            # register -1: the line lies around the tonic, within the voice's reach; an octave higher,
            # pitched_word resampled most notes far above it and shifted the formants (chipmunk vowels)
            midis = melody(song, rng, len(words), register=-1)
            wave, line_notes = sing_line(words, midis, line_voice, song.beat, sr,
                                         hold_last_beats=float(rng.choice([1.0, 2.0, 3.0])))
            start = int(round(t * sr))
            stop = min(n, start + wave.size, int(round(end * sr)))
            if stop <= start:
                break
            piece = wave[: stop - start].copy()
            fade = min(piece.size, int(0.05 * sr))
            piece[piece.size - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
            vocals[start:stop] = piece
            for note in line_notes:
                if t + note.start < stop / sr:
                    notes.append(Note(t + note.start, min(note.duration, stop / sr - t - note.start), note.midi,
                                      note.word))
                    note_languages.append(lang)
            lyric_lines.append(" ".join(words))
            t += wave.size / sr + song.beat * float(rng.choice([1.0, 2.0]))
    # The accompaniment carries the melody on a lead instrument where nobody sings.
    lead = []
    first_vocal = notes[0].start if notes else p.seconds
    beat_t = 0.0
    while beat_t < p.seconds:
        if beat_t + song.beat <= first_vocal or (notes and beat_t >= notes[-1].start + notes[-1].duration + song.beat):
            lead.append(beat_t)
        beat_t += 2 * song.beat
    lead_midis = melody(song, rng, len(lead), register=1)
    backing = accompaniment(song, genre, rng, sr,
                            lead_notes=[(t0, 2 * song.beat * 0.9, m) for t0, m in zip(lead, lead_midis)])
    if notes:
        vocals *= level_gain(vocals, backing, level_db)
    vocals = mastering.apply(vocals, sr)
    backing = mastering.apply(backing, sr)
    mix = vocals + backing
    peak = float(np.max(np.abs(mix)))
    gain = np.float32(0.89 / peak) if peak > 0 else np.float32(1.0)
    return RenderedTrack(
        mix=(mix * gain).astype(np.float32), vocals=(vocals * gain).astype(np.float32),
        accompaniment=(backing * gain).astype(np.float32), notes=notes, note_languages=note_languages,
        lyrics=" / ".join(lyric_lines), vocal_level_db=level_db if notes else None, tempo=song.tempo,
        tonic_midi=song.tonic_midi, vocal_seconds=float(sum(x.duration for x in notes)),
    )
