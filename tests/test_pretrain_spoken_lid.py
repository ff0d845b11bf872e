"""Training the spoken-LID model: data generation, augmentation, singing, and the job end to end (tiny)."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from lid_spark.audio.separation import SoftMaskSeparator, sdr
from lid_spark.audio.spoken_lid import SpokenLID, verify_checksums
from lid_spark.config import load_config
from lid_spark.errors import ParameterError
from lid_spark.tools.pretrain_spoken_lid import HELDOUT_KINDS, settings_from_config
from lid_spark.tools.pretrain_spoken_lid.augment import augment, music_bed, over_music
from lid_spark.tools.pretrain_spoken_lid.corpus import build_corpus
from lid_spark.tools.pretrain_spoken_lid.evaluate import heldout_clips
from lid_spark.tools.pretrain_spoken_lid.model_directory import hyperparams_yaml
from lid_spark.tools.pretrain_spoken_lid.settings import SAMPLE_RATE, PretrainSettings, check_languages
from lid_spark.tools.pretrain_spoken_lid.utterances import TRAINING, sing_utterance, speak_utterance


def test_spoken_and_sung_utterances_differ_in_rhythm():
    rng = np.random.default_rng(1)
    spoken = speak_utterance("it", rng, TRAINING, min_seconds=2.0)
    sung = sing_utterance("it", rng, TRAINING, min_seconds=2.0)
    assert spoken.dtype == np.float32 and spoken.size >= 2 * SAMPLE_RATE
    assert sung.dtype == np.float32 and sung.size >= 2 * SAMPLE_RATE
    assert np.max(np.abs(sung)) > 0.01


def test_world_singing_utterances_are_sung_by_training_singers():
    from lid_spark.tools.pretrain_spoken_lid.utterances import world_sing_utterance
    from lid_spark.tools.synth import singing

    calls = []
    original = singing.sing_line
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(singing, "sing_line", lambda words, midis, voice, *a, **k: calls.append(voice.variant)
                      or original(words, midis, voice, *a, **k))
        wave = world_sing_utterance("ja", np.random.default_rng(3), TRAINING, min_seconds=2.0)
    assert wave.dtype == np.float32 and wave.size >= 2 * SAMPLE_RATE and np.all(np.isfinite(wave))
    assert calls and set(calls) <= set(TRAINING.sung_variants) - {None}


def test_augment_keeps_length_and_changes_signal():
    rng = np.random.default_rng(2)
    wave = speak_utterance("de", rng, TRAINING, min_seconds=1.0)
    outs = [augment(wave, np.random.default_rng(seed)) for seed in range(4)]
    for out in outs:
        assert out.shape == wave.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and 0.0 < np.max(np.abs(out)) <= 0.95 + 1e-6
    assert not np.allclose(outs[0], outs[1])


def test_speaker_augmentations_move_formants_pitch_and_tempo_and_codecs_keep_the_length():
    from scipy.signal import lfilter

    from lid_spark.tools.pretrain_spoken_lid.augment import formant_shift, lossy_codec, voice_augment
    from lid_spark.tools.synth.dsp import flat_f0

    rng = np.random.default_rng(6)
    wave = speak_utterance("it", rng, TRAINING, min_seconds=2.0)
    # a vowel: harmonics of 150 Hz through one resonance (a formant) at 1 kHz
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    source = sum(np.sin(2 * np.pi * 150 * k * t) / k ** 0.5 for k in range(1, 50))
    theta = 2 * np.pi * 1000 / SAMPLE_RATE
    vowel = lfilter([1], [1, -2 * 0.97 * np.cos(theta), 0.97 ** 2], source).astype(np.float32)
    vowel /= np.max(np.abs(vowel))

    def formant_hz(x):
        spectrum = np.convolve(np.abs(np.fft.rfft(x * np.hanning(x.size))), np.ones(400) / 400, "same")
        return float(np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)[np.argmax(spectrum)])

    for warp in (0.87, 1.15):
        shifted = formant_shift(vowel, warp)
        assert shifted.shape == vowel.shape and np.all(np.isfinite(shifted))
        assert abs(formant_hz(shifted) / (1000 * warp) - 1) < 0.06, (warp, formant_hz(shifted))
        assert abs(flat_f0(shifted, SAMPLE_RATE) / 150 - 1) < 0.03   # the pitch stays
    for seed in range(4):
        coded = lossy_codec(wave, np.random.default_rng(seed))
        assert coded.shape == wave.shape and np.all(np.isfinite(coded)) and not np.array_equal(coded, wave)
        assert sdr(wave, coded) > 5   # lossy, not destroyed
    # the voice-level set changes the voice; with none on, nothing changes
    assert not np.array_equal(voice_augment(wave, np.random.default_rng(1)), wave)
    np.testing.assert_array_equal(voice_augment(wave, np.random.default_rng(1), ()), wave)


def test_voice_over_music_and_its_separated_estimate():
    rng = np.random.default_rng(3)
    voice = sing_utterance("fr", rng, TRAINING, min_seconds=3.0)
    bed = music_bed(np.random.default_rng(4), voice.size)
    assert bed.shape == voice.shape and np.max(np.abs(bed)) > 0.01
    mixed = over_music(voice, np.random.default_rng(5))
    separated = over_music(voice, np.random.default_rng(5), SoftMaskSeparator())
    assert mixed.shape == separated.shape == voice.shape and mixed.dtype == separated.dtype == np.float32
    # The voice is in the mix (the level is drawn within +-9 dB of the music), and the separator's
    # estimate is nearer the voice than the mix is.
    assert -12 < sdr(voice / np.max(np.abs(voice)), mixed / np.max(np.abs(mixed))) < 12
    gain = np.dot(mixed, voice) / np.dot(voice, voice)
    assert sdr(gain * voice, separated) > sdr(gain * voice, mixed)


def test_corpus_cache_key_follows_the_separator_settings():
    # The separated share goes through the pipeline's configured separator (the default: pretrained).
    default = load_config().audio.separation
    key = PretrainSettings().data_key()
    assert PretrainSettings().make_separator().name == default.backend == "pretrained"
    assert settings_from_config(load_config().pretrain_spoken_lid, separation=default).data_key() == key
    soft = load_config(overrides=["audio.separation.backend=softmask"]).audio.separation
    softmask = settings_from_config(load_config().pretrain_spoken_lid, separation=soft)
    assert softmask.make_separator().name == "softmask" and softmask.data_key() != key
    margin = load_config(overrides=["audio.separation.backend=softmask", "audio.separation.margin=2.5"])
    assert settings_from_config(load_config().pretrain_spoken_lid,
                                separation=margin.audio.separation).data_key() != softmask.data_key()
    # where it runs does not change the data
    cpu = load_config(overrides=["audio.separation.device=cpu"]).audio.separation
    assert settings_from_config(load_config().pretrain_spoken_lid, separation=cpu).data_key() == key


def test_heldout_kinds_are_deterministic_and_differ():
    settings = PretrainSettings(languages=("en", "ta", "ru", "ko"), eval_utterances=1)
    # sung_separated last, so that its repeat below follows the same espeak-ng calls (its output
    # depends a little on the language spoken just before)
    order = sorted(HELDOUT_KINDS, key=lambda kind: kind == "sung_separated")
    clips = {kind: heldout_clips(settings, kind) for kind in order}
    for kind, (waves, labels) in clips.items():
        assert all(w.dtype == np.float32 and w.size > SAMPLE_RATE for w in waves), kind
        if not kind.startswith("catalog_"):
            assert labels.tolist() == [0, 1, 2, 3]
    # the world's songs: both targets, and "other" languages; the clean stem and the separated mix differ
    assert {0, 1} <= set(clips["catalog_sung"][1].tolist()) and len(clips["catalog_sung"][0]) == 4
    assert clips["catalog_sung"][1].tolist() == clips["catalog_separated"][1].tolist()
    assert not np.array_equal(clips["catalog_sung"][0][0], clips["catalog_separated"][0][0])
    again, _ = heldout_clips(settings, "sung_separated")
    assert all(np.array_equal(a, b) for a, b in zip(again, clips["sung_separated"][0]))
    assert not np.array_equal(clips["sung"][0][0], clips["sung_separated"][0][0])
    with pytest.raises(ParameterError, match="held-out kind"):
        heldout_clips(settings, "whispered")


def test_settings_from_default_config_and_bad_values():
    settings = settings_from_config(load_config().pretrain_spoken_lid)
    assert len(settings.languages) >= 40 and {"en", "ta", "ja", "pa"} <= set(settings.languages)
    assert check_languages(settings.languages) == settings.languages
    with pytest.raises(ParameterError, match="xx"):
        check_languages(("en", "xx"))
    with pytest.raises(ParameterError, match="crop_frames"):
        settings_from_config(load_config(overrides=["pretrain_spoken_lid.crop_frames=[10, 5]"]).pretrain_spoken_lid)
    with pytest.raises(ParameterError, match="batch_size"):
        PretrainSettings(batch_size=0).validate()
    with pytest.raises(ParameterError, match="sung_share"):
        PretrainSettings(sung_share=1.5).validate()
    with pytest.raises(ParameterError, match="music_share"):
        PretrainSettings(music_share=-0.1).validate()
    assert PretrainSettings().data_key() != PretrainSettings(separated_share=0.0).data_key()
    assert PretrainSettings().data_key() != PretrainSettings(voices="legacy").data_key()
    assert PretrainSettings().data_key() != PretrainSettings(world_singing_share=0.0).data_key()
    assert PretrainSettings().data_key() != PretrainSettings(augmentations=("noise",)).data_key()
    # SpecAugment is applied in training: the generated data is the same without it
    everything_but = tuple(a for a in PretrainSettings().augmentations if a != "specaugment")
    assert PretrainSettings().data_key() == PretrainSettings(augmentations=everything_but).data_key()
    with pytest.raises(ParameterError, match="augmentations"):
        PretrainSettings(augmentations=("noise", "echo")).validate()
    with pytest.raises(ParameterError, match="voices"):
        settings_from_config(load_config(overrides=["pretrain_spoken_lid.voices=unheard"]).pretrain_spoken_lid)
    assert "out_n_neurons: 50" in hyperparams_yaml(settings, 50)


@pytest.mark.slow
def test_corpus_is_the_same_generated_in_parallel_and_mixes_sung_utterances():
    settings = PretrainSettings(languages=("en", "ta"), utterances_per_language=4, sung_share=0.5)
    serial = build_corpus(settings)
    parallel = build_corpus(dataclasses.replace(settings, workers=2))
    assert serial.labels.tolist() == parallel.labels.tolist() == [0] * 4 + [1] * 4
    assert all(torch.equal(a, b) for a, b in zip(serial.features, parallel.features))
    # Sung and spoken utterances of the same seed differ; a share of 0 gives only spoken ones.
    spoken = build_corpus(dataclasses.replace(settings, sung_share=0.0))
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(serial.features, spoken.features))


@pytest.mark.slow
def test_job_trains_a_loadable_model_with_report(tmp_path, capsys):
    from lid_spark.jobs.pretrain_spoken_lid import main

    out = tmp_path / "model"
    code = main(["--out", str(out), "--languages", "en,fr,ta", "--minutes", "1", "--cache", str(tmp_path / "cache"),
                 "pretrain_spoken_lid.utterances_per_language=2", "pretrain_spoken_lid.eval_utterances=1",
                 "pretrain_spoken_lid.max_steps=3", "pretrain_spoken_lid.batch_size=4"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["training"]["steps"] == 3 and summary["train_utterances"] == 6
    report = json.loads((out / "training.json").read_text())
    for kind in ("heldout_spoken", "heldout_sung", "heldout_sung_separated"):
        assert report[kind]["clips"] == 3 and 0.0 <= report[kind]["accuracy"] <= 1.0
    verify_checksums(out)
    lid = SpokenLID.load(str(out), device="cpu")
    assert lid.languages == ["en: English", "fr: French", "ta: Tamil"]
    assert list((tmp_path / "cache").glob("spoken_lid_train_*.pt"))

    # Continue training from that model; a model of other languages is refused before any work.
    again = tmp_path / "continued"
    assert main(["--out", str(again), "--init", str(out), "--languages", "en,fr,ta", "--cache", str(tmp_path / "cache"),
                 "pretrain_spoken_lid.utterances_per_language=2", "pretrain_spoken_lid.eval_utterances=1",
                 "pretrain_spoken_lid.max_steps=1", "pretrain_spoken_lid.batch_size=4"]) == 0
    continued = json.loads((again / "training.json").read_text())["training"]
    assert continued["steps"] == 1 and continued["continued_from"]["steps"] == 3
    with pytest.raises(ParameterError, match="other languages"):
        main(["--out", str(tmp_path / "bad"), "--init", str(out), "--languages", "en,fr"])
