"""Pure audio functions: decoding, separation, segmentation, timbral codebook, per-track extraction."""

from __future__ import annotations

import io
import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from lid_spark.audio.decode import AudioError, decode, resolve_uri
from lid_spark.audio.pipeline import analyse_track, embedded_segments
from lid_spark.audio.segments import split_intervals, spread_evenly, vocal_segments, voiced_intervals
from lid_spark.audio.separation import SoftMaskSeparator, make_separator, repeating_spectrum, sdr, si_sdr
from lid_spark.audio.timbral import JSON_NAME, NPZ_NAME, Codebook, log_mel, with_deltas
from lid_spark.config import load_config
from lid_spark.errors import InputError, ParameterError
from lid_spark.schemas import STATUS_MISSING
from tests.audio_samples import SR, accompaniment, drone, song


def _tone(seconds, sr, freq=440.0, channels=1, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def _peak_hz(wave, sr):
    spectrum = np.abs(np.fft.rfft(wave))
    return np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spectrum)]


@pytest.fixture(scope="module")
def sample_song():
    return song(12.0, "en", seed=0)


# -- decoding ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,ext,channels", [("WAV", "wav", 2), ("FLAC", "flac", 2), ("OGG", "ogg", 2),
                                              ("MP3", "mp3", 2)])
def test_decode_formats_to_mono_model_rate(tmp_path, fmt, ext, channels):
    path = tmp_path / f"a.{ext}"
    sf.write(path, _tone(2.0, 44100, channels=channels), 44100, format=fmt)
    audio = decode(str(path), sample_rate=16000)
    assert audio.wave.dtype == np.float32 and audio.wave.ndim == 1
    assert audio.source_rate == 44100 and audio.channels == channels and not audio.truncated
    assert abs(audio.seconds - 2.0) < 0.06  # mp3 adds encoder padding
    assert abs(_peak_hz(audio.wave, 16000) - 440) < 3
    assert 0.4 < np.abs(audio.wave).max() < 0.6


def test_decode_low_rate_and_multichannel(tmp_path):
    sf.write(tmp_path / "low.wav", _tone(3.0, 8000, freq=300), 8000)
    low = decode(str(tmp_path / "low.wav"), sample_rate=16000)
    assert (low.source_rate, low.channels, len(low.wave)) == (8000, 1, 48000)
    assert abs(_peak_hz(low.wave, 16000) - 300) < 2
    # Six channels at 48 kHz, with the tone only in some of them: the mono mix keeps it.
    six = _tone(3.0, 48000, channels=6)
    six[:, 3:] = 0
    sf.write(tmp_path / "six.flac", six, 48000)
    multi = decode(str(tmp_path / "six.flac"), sample_rate=16000)
    assert (multi.source_rate, multi.channels, len(multi.wave)) == (48000, 6, 48000)
    assert np.abs(multi.wave[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)


def test_decode_errors_have_status_codes(tmp_path):
    (tmp_path / "corrupt.flac").write_bytes(os.urandom(4096))
    (tmp_path / "zero.wav").write_bytes(b"")
    sf.write(tmp_path / "header_only.wav", np.zeros(0, dtype=np.float32), 16000)
    cases = {"missing.wav": "missing_file", "corrupt.flac": "unreadable", "zero.wav": "empty",
             "header_only.wav": "empty"}
    for name, status in cases.items():
        with pytest.raises(AudioError) as info:
            decode(str(tmp_path / name))
        assert info.value.status == status, name
        assert name in info.value.message
    with pytest.raises(ParameterError, match="max_seconds"):
        decode(str(tmp_path / "zero.wav"), max_seconds=0)


def test_decode_long_file_in_bounded_memory(tmp_path):
    # 20 minutes of tone, written block by block; decoding keeps only max_seconds and streams the rest.
    path = tmp_path / "long.flac"
    minute = _tone(60.0, 8000, freq=200, amplitude=0.3)
    with sf.SoundFile(path, "w", 8000, 1, format="FLAC") as f:
        for _ in range(20):
            f.write(minute)
    tracemalloc.start()
    try:
        audio = decode(str(path), sample_rate=16000, max_seconds=60.0, block_seconds=5.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert audio.truncated and audio.seconds == pytest.approx(60.0)
    assert audio.source_seconds == pytest.approx(1200.0)
    whole_file_bytes = 1200 * 16000 * 4
    assert peak < 10 * 60 * 16000 * 4 / 4 and peak < whole_file_bytes / 5
    assert abs(_peak_hz(audio.wave, 16000) - 200) < 1


def test_resolve_uri_and_other_schemes(tmp_path):
    assert resolve_uri("file:///music/a%20b.flac") == "/music/a b.flac"
    assert resolve_uri("file:/music/a.flac") == "/music/a.flac"
    assert resolve_uri("dbfs:/mnt/x/a.flac") == "/dbfs/mnt/x/a.flac"
    assert resolve_uri("s3a://bucket/k/a.mp3") == "s3://bucket/k/a.mp3"
    assert resolve_uri("gs://bucket/a.ogg") == "gs://bucket/a.ogg"
    assert resolve_uri("a.flac", audio_root="/music/") == "/music/a.flac"
    assert resolve_uri("a.flac", audio_root="s3a://b/root") == "s3://b/root/a.flac"
    assert resolve_uri("/abs/a.flac", audio_root="/music") == "/abs/a.flac"
    with pytest.raises(ParameterError):
        resolve_uri("  ")
    # file: URIs decode, and any fsspec protocol does too (here its in-memory filesystem).
    sf.write(tmp_path / "t.wav", _tone(1.0, 16000), 16000)
    assert len(decode(f"file://{tmp_path}/t.wav").wave) == 16000
    import fsspec

    buffer = io.BytesIO()
    sf.write(buffer, _tone(1.0, 22050), 22050, format="FLAC")
    with fsspec.open("memory://lid-spark-test/t.flac", "wb") as f:
        f.write(buffer.getvalue())
    assert len(decode("memory://lid-spark-test/t.flac").wave) == 16000
    with pytest.raises(AudioError) as info:
        decode("memory://lid-spark-test/none.flac")
    assert info.value.status == STATUS_MISSING


# -- separation --------------------------------------------------------------------------------------

def test_sdr_metrics():
    s = np.sin(np.arange(4000) / 7)
    assert sdr(s, 0.9 * s) == pytest.approx(20.0, abs=1e-6)
    assert si_sdr(s, 0.5 * s) > 100            # gain does not count
    noisy = s + 0.1 * np.random.default_rng(0).normal(size=len(s))
    assert si_sdr(s, noisy) == pytest.approx(10 * np.log10(0.5 / 0.01), abs=0.5)
    with pytest.raises(ParameterError):
        sdr(s, s[:10])


@pytest.mark.slow
def test_softmask_separation_improves_vocal_sdr(sample_song):
    mixture, vocals = sample_song
    estimate = SoftMaskSeparator().separate(mixture, SR)
    assert estimate.shape == mixture.shape and estimate.dtype == np.float32
    # The mixture as its own estimate is the baseline: separation must beat it clearly.
    assert sdr(vocals, estimate) > sdr(vocals, mixture) + 6
    assert si_sdr(vocals, estimate) > si_sdr(vocals, mixture) + 6
    # Blocks: a long track separated in blocks stays close to whole-track separation quality.
    blocked = SoftMaskSeparator(block_seconds=6.0).separate(mixture, SR)
    assert sdr(vocals, blocked) > sdr(vocals, mixture) + 5


@pytest.mark.parametrize("bins,frames,width", [(6, 9, 1), (20, 30, 3), (64, 200, 10)])
def test_repeating_spectrum_is_librosas_nn_filter(bins, frames, width):
    import librosa

    magnitude = np.abs(np.random.default_rng(frames).normal(size=(bins, frames))).astype(np.float32)
    expected = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=width)
    np.testing.assert_array_equal(repeating_spectrum(magnitude, width, chunk_frames=7), expected)
    with pytest.raises(ParameterError, match="width"):
        repeating_spectrum(magnitude, frames // 2)


def test_repeating_spectrum_on_a_song_is_librosas_nn_filter(sample_song):
    import librosa

    mixture, _ = sample_song
    magnitude = np.abs(librosa.stft(mixture[: 6 * SR], n_fft=2048, hop_length=512))
    expected = librosa.decompose.nn_filter(magnitude, aggregate=np.median, metric="cosine", width=16)
    np.testing.assert_allclose(repeating_spectrum(magnitude, 16), expected, rtol=1e-6)


def test_separator_choice_and_parameters(tmp_path):
    assert make_separator("softmask").name == "softmask"
    # The spleeter backend needs its own environment: a missing one is named with the command that builds it.
    with pytest.raises(ParameterError, match="spleeter_env"):
        make_separator("spleeter", env_python=str(tmp_path / "no-such-env"))
    with pytest.raises(ParameterError, match="audio.separation.backend must be one of"):
        make_separator("demucs")
    with pytest.raises(ParameterError, match="n_fft"):
        SoftMaskSeparator(n_fft=1000)
    with pytest.raises(ParameterError, match="block_seconds"):
        SoftMaskSeparator(block_seconds=1.0, similar_seconds=1.0)
    silence = np.zeros(SR * 3, dtype=np.float32)
    assert not SoftMaskSeparator().separate(silence, SR).any()


# -- segmentation ------------------------------------------------------------------------------------

def test_voiced_intervals_threshold_and_floor():
    wave = np.zeros(8 * SR, dtype=np.float32)
    wave[SR:3 * SR] = _tone(2.0, SR, amplitude=0.5)
    wave[5 * SR:6 * SR] = _tone(1.0, SR, amplitude=0.5 * 10 ** (-40 / 20))  # 40 dB quieter
    loud_only = voiced_intervals(wave, SR, top_db=30, floor_db=None) / SR
    assert len(loud_only) == 1 and loud_only[0] == pytest.approx([1.0, 3.0], abs=0.07)
    both = voiced_intervals(wave, SR, top_db=60, floor_db=None) / SR
    assert len(both) == 2
    # The absolute floor removes the quiet run even with a generous relative threshold.
    floored = voiced_intervals(wave, SR, top_db=60, floor_db=-40) / SR
    assert len(floored) == 1
    assert len(voiced_intervals(np.zeros(SR, dtype=np.float32), SR)) == 0
    # Short gaps (between words) are bridged; long ones split.
    words = np.zeros(6 * SR, dtype=np.float32)
    for start, end in [(0.5, 1.5), (1.6, 2.5), (4.0, 5.0)]:
        words[int(start * SR):int(end * SR)] = _tone(6.0, SR)[:int(end * SR) - int(start * SR)]
    assert len(voiced_intervals(words, SR, min_silence_seconds=0.0)) == 3
    bridged = voiced_intervals(words, SR, min_silence_seconds=0.25) / SR
    assert len(bridged) == 2 and bridged[0] == pytest.approx([0.5, 2.5], abs=0.07)
    # Frames where the "vocals" are a small share of the mixture are not voiced.
    mixture = words + 0.5 * _tone(6.0, SR, freq=220)
    assert len(voiced_intervals(words, SR, min_silence_seconds=0.25, mixture=mixture, min_share_db=-3)) == 2
    assert len(voiced_intervals(0.1 * words, SR, mixture=mixture, min_share_db=-3)) == 0
    with pytest.raises(ParameterError, match="mixture"):
        voiced_intervals(words, SR, min_share_db=-3)


def test_split_and_spread():
    pieces = split_intervals(np.array([[0, 10 * SR], [12 * SR, 12 * SR + SR // 2]]), SR, 1.0, 4.0, 0.5)
    assert (pieces / SR).tolist() == [[0, 4], [4, 8], [8, 10]]  # the 0.5 s run is too short
    odd = split_intervals(np.array([[0, int(2.7 * SR)]]), SR, 1.0, 4.0, 0.5)
    assert (odd / SR).tolist() == [[0, 2.5]]
    assert spread_evenly(3, 8).tolist() == [0, 1, 2]
    assert spread_evenly(100, 5).tolist() == [0, 25, 50, 74, 99]
    with pytest.raises(ParameterError, match="min_seconds"):
        split_intervals(pieces, SR, 5.0, 4.0)
    with pytest.raises(ParameterError, match="length_step_seconds"):
        split_intervals(pieces, SR, 1.0, 4.0, 2.0)


def test_vocal_segments_across_the_track():
    # Ten one-second-apart voiced runs of 2 s over 40 s: capped at 4 segments spread to the end.
    wave = np.zeros(40 * SR, dtype=np.float32)
    for start in range(0, 40, 4):
        wave[start * SR:(start + 2) * SR] = _tone(2.0, SR)
    segs = vocal_segments(wave, SR, top_db=30, min_seconds=1.0, max_seconds=4.0, max_per_track=4,
                          length_step_seconds=0.5)
    starts = segs.intervals[:, 0] / SR
    assert len(segs) == 4 and starts[0] < 1 and starts[-1] > 30
    lengths = (segs.intervals[:, 1] - segs.intervals[:, 0]) / SR
    assert np.all(lengths >= 1.0) and np.all(lengths <= 4.0) and np.allclose(lengths % 0.5, 0)
    assert segs.vocal_ratio == pytest.approx(0.5, abs=0.03)


@pytest.mark.slow
def test_segments_of_a_song_follow_its_vocals(sample_song):
    mixture, vocals = sample_song
    estimate = SoftMaskSeparator().separate(mixture, SR)
    true_voiced = np.zeros(len(vocals), dtype=bool)
    for a, b in voiced_intervals(vocals, SR, top_db=40, min_silence_seconds=0.25):
        true_voiced[a:b] = True

    def precision(segs):
        return np.mean([true_voiced[a:b].mean() for a, b in segs.intervals])

    params = dict(top_db=30, min_seconds=1.0, max_seconds=4.0, max_per_track=8, length_step_seconds=0.5,
                  min_silence_seconds=0.25)
    by_level = vocal_segments(estimate, SR, **params)
    by_share = vocal_segments(estimate, SR, **params, mixture=mixture, min_share_db=-10)
    assert len(by_share) >= 3
    # The vocal-share test keeps segments on true singing more than the level threshold alone.
    assert precision(by_share) > 0.8 and precision(by_share) > precision(by_level)
    assert by_share.vocal_ratio < by_level.vocal_ratio
    # Accompaniment alone has less "vocal" time than the song; a sustained chord has none.
    backing = accompaniment(12.0)
    backing_segs = vocal_segments(SoftMaskSeparator().separate(backing, SR), SR, **params, mixture=backing,
                                  min_share_db=-10)
    assert backing_segs.vocal_ratio < by_share.vocal_ratio
    chord = drone(12.0)
    assert len(vocal_segments(SoftMaskSeparator().separate(chord, SR), SR, **params, mixture=chord,
                              min_share_db=-10)) == 0


# -- timbral codebook --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted_codebook():
    waves = [song(6.0, lang, seed=i)[0] for i, lang in enumerate(["en", "fr", "es"])]
    waves.append(accompaniment(6.0, seed=5))
    mels = [log_mel(w, SR, n_mels=32) for w in waves]
    return Codebook.fit(mels, SR, n_mels=32, codebook_size=6, seed=3), waves, mels


def test_log_mel_and_deltas():
    mel = log_mel(_tone(1.0, SR), SR, n_mels=32, window_seconds=0.064)
    assert mel.shape == (30, 32)  # half-overlapping 1024-sample windows over 1 s
    features = with_deltas(np.cumsum(np.ones((20, 2)), axis=0))
    assert features.shape == (20, 6)
    assert np.allclose(features[5:15, 2:4], 1.0) and np.allclose(features[5:15, 4:], 0.0)
    assert with_deltas(np.ones((1, 3))).shape == (1, 9)


def test_codebook_fit_matches_sklearn_and_pools(fitted_codebook):
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    book, waves, mels = fitted_codebook
    stacked = np.concatenate(mels)
    reference_pca = PCA(n_components=0.95, svd_solver="full").fit(stacked)
    assert book.pca_components.shape[0] == reference_pca.n_components_
    assert book.info["pca_explained_variance"] >= 0.95
    features = np.concatenate([book.features(m) for m in mels])
    assert features.shape[1] == 3 * book.pca_components.shape[0]
    gmm = GaussianMixture(6, covariance_type="diag", random_state=3, reg_covar=1e-4).fit(features)
    assert np.allclose(book.posteriors(features), gmm.predict_proba(features), atol=1e-6)
    vector = book.encode(waves[0], SR)
    assert vector.shape == (12,) and vector.dtype == np.float32
    assert vector[:6].sum() == pytest.approx(1.0, abs=1e-5)  # mean pooling of posteriors
    assert np.all(vector[6:] >= vector[:6])                   # max pooling dominates the mean
    assert not np.allclose(book.encode(waves[3], SR), vector)  # backing track differs from a song


def test_codebook_save_load_without_pickle(fitted_codebook, tmp_path):
    book = fitted_codebook[0]
    book.save(str(tmp_path / "cb"))
    with np.load(tmp_path / "cb" / NPZ_NAME, allow_pickle=False) as arrays:
        assert set(arrays.files) == {"pca_mean", "pca_components", "gmm_weights", "gmm_means", "gmm_variances"}
    loaded = Codebook.load(str(tmp_path / "cb"))
    assert loaded.checksum == book.checksum and loaded.feature_version == book.feature_version
    wave = fitted_codebook[1][1]
    assert np.array_equal(loaded.encode(wave, SR), book.encode(wave, SR))
    # A changed npz no longer matches the checksum in the json.
    other = Codebook.fit(fitted_codebook[2], SR, n_mels=32, codebook_size=3, seed=1)
    other.save(str(tmp_path / "other"))
    os.replace(tmp_path / "other" / NPZ_NAME, tmp_path / "cb" / NPZ_NAME)
    with pytest.raises(InputError, match="checksum"):
        Codebook.load(str(tmp_path / "cb"))
    with pytest.raises(InputError, match="fit_codebook"):
        Codebook.load(str(tmp_path / "nothing"))
    assert (tmp_path / "cb" / JSON_NAME).exists()
    with pytest.raises(ParameterError, match="Hz"):
        book.encode(wave, 8000)


# -- one track, end to end without the embedder -----------------------------------------------------

@pytest.mark.slow
def test_analyse_track_statuses(tmp_path, sample_song, fitted_codebook):
    # The soft mask, with the share threshold that suits it (the default, -20 dB, suits the pretrained separator).
    cfg = load_config(overrides=["audio.timbral.n_mels=32", "audio.segments.min_share_db=-10"])
    book = fitted_codebook[0]
    separator = SoftMaskSeparator()
    mixture, _ = sample_song
    sf.write(tmp_path / "song.flac", mixture, SR)
    sf.write(tmp_path / "silent.wav", np.zeros(SR * 3, dtype=np.float32), SR)
    sf.write(tmp_path / "drone.ogg", drone(8.0), SR)
    good = analyse_track(str(tmp_path / "song.flac"), cfg, separator, book)
    assert good.features.status == "ok" and good.features.error is None
    assert len(good.segment_waves) == len(good.features.segments) >= 3
    assert all(len(w) == round((s.end_s - s.start_s) * SR) for w, s in zip(good.segment_waves, good.features.segments))
    assert good.features.duration_s == pytest.approx(12.0) and 0.3 < good.features.vocal_ratio <= 1.0
    assert good.features.timbral.shape == (book.vector_size,)
    assert set(good.features.timings) == {"decode", "separation", "segmentation", "timbral"}
    silent = analyse_track(str(tmp_path / "silent.wav"), cfg, separator, book).features
    assert silent.status == "silent" and silent.timbral is None
    chord = analyse_track(str(tmp_path / "drone.ogg"), cfg, separator, book).features
    assert chord.status == "no_vocals" and chord.segments == [] and chord.timbral is not None
    assert analyse_track(None, cfg, separator, book).features.status == "no_uri"
    assert analyse_track(str(tmp_path / "nope.mp3"), cfg, separator, book).features.status == "missing_file"
    long_cfg = cfg.with_overrides(["audio.max_seconds=6.0"])
    cut = analyse_track(str(tmp_path / "song.flac"), long_cfg, separator, book).features
    assert cut.status == "truncated" and cut.duration_s == pytest.approx(12.0)
    assert max(s.end_s for s in cut.segments) <= 6.0


@pytest.mark.slow
def test_extract_tracks_embeds_segments_of_a_batch(tmp_path, fitted_codebook):
    from lid_spark import LANGUAGE_CLASSES
    from lid_spark.audio.pipeline import extract_tracks
    from lid_spark.audio.spoken_lid import SpokenLID, target_scores

    cfg = load_config(overrides=["audio.timbral.n_mels=32", "audio.spoken_lid.bucket_ratio=1.0"])
    for i, lang in enumerate(["en", "fr"]):
        sf.write(tmp_path / f"{lang}.flac", song(8.0, lang, seed=10 + i)[0], SR)
    uris = [str(tmp_path / "en.flac"), None, str(tmp_path / "fr.flac")]
    spoken_lid = SpokenLID.load("embedded", device="cpu")
    separator = SoftMaskSeparator()
    together = extract_tracks(uris, cfg, separator, fitted_codebook[0], spoken_lid, scores=target_scores)
    assert [t.status for t in together] == ["ok", "no_uri", "ok"]
    segments = [s for t in together for s in t.segments]
    assert all(s.embedding.shape == (spoken_lid.embedding_dim,) for s in segments)
    assert all(set(s.spoken_lid_scores) == set(LANGUAGE_CLASSES) for s in segments)
    assert all(sum(s.spoken_lid_scores.values()) == pytest.approx(1.0, abs=1e-4) for s in segments)
    assert "embedding" in together[0].timings
    # Segment lengths are quantized, so batching across tracks needs no padding: the embeddings
    # equal those of each track alone.
    alone = extract_tracks(uris[2:], cfg, separator, fitted_codebook[0], spoken_lid, scores=target_scores)[0]
    for a, b in zip(alone.segments, together[2].segments):
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


class _FlakySeparator(SoftMaskSeparator):
    """Soft-mask separation that fails on chosen calls: one track's error, or the backend gone."""

    def __init__(self, fail_on: dict[int, Exception]):
        super().__init__()
        self.fail_on, self.calls = fail_on, 0

    def separate(self, wave, sr):
        self.calls += 1
        if self.calls in self.fail_on:
            raise self.fail_on[self.calls]
        return super().separate(wave, sr)


def test_separation_failure_is_a_track_status_and_an_unavailable_backend_stops(tmp_path):
    from lid_spark.audio.pipeline import extract_tracks
    from lid_spark.audio.separation import SeparationUnavailable
    from lid_spark.schemas import STATUS_SEPARATION_FAILED, STATUSES

    cfg = load_config()
    for name in ("a", "b", "c"):
        sf.write(tmp_path / f"{name}.wav", drone(3.0), SR)
    uris = [str(tmp_path / f"{name}.wav") for name in ("a", "b", "c")]
    flaky = _FlakySeparator({2: AudioError(STATUS_SEPARATION_FAILED, "separator process died (exit code -9)")})
    out = extract_tracks(uris, cfg, flaky, None, None)
    assert [t.status for t in out] == ["no_vocals", STATUS_SEPARATION_FAILED, "no_vocals"]
    assert "exit code -9" in out[1].error and out[1].duration_s == pytest.approx(3.0)
    assert STATUS_SEPARATION_FAILED in STATUSES
    gone = _FlakySeparator({2: SeparationUnavailable("no separator process can be started")})
    with pytest.raises(SeparationUnavailable, match="can be started"):
        extract_tracks(uris, cfg, gone, None, None)
    # Any other error in one track is that track's `failed` status; the batch goes on.
    broken = _FlakySeparator({1: ValueError("bad shape")})
    assert [t.status for t in extract_tracks(uris, cfg, broken, None, None)] == ["failed", "no_vocals", "no_vocals"]


def test_embedded_segments_add_the_mixture_back():
    rng = np.random.default_rng(0)
    vocals, mixture = rng.standard_normal(100).astype(np.float32), rng.standard_normal(100).astype(np.float32)
    spans = [(0, 10), (50, 80)]
    alone = embedded_segments(vocals, mixture, spans, 0.0)
    assert [w.tolist() for w in alone] == [vocals[0:10].tolist(), vocals[50:80].tolist()]
    np.testing.assert_allclose(embedded_segments(vocals, mixture, spans, 1.0)[1], mixture[50:80])
    mixed = embedded_segments(vocals, mixture, spans, 0.3)
    np.testing.assert_allclose(mixed[0], 0.7 * vocals[:10] + 0.3 * mixture[:10], rtol=1e-6)
    assert all(w.dtype == np.float32 for w in mixed)
    with pytest.raises(ParameterError, match="mix_share"):
        embedded_segments(vocals, mixture, spans, 1.5)
    with pytest.raises(ParameterError, match="audio.segments.mix_share"):
        load_config(overrides=["audio.segments.mix_share=2"])
