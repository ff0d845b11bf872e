"""The model directory that speechbrain's ``EncoderClassifier.from_hparams(source=dir)`` loads.

It holds ``hyperparams.yaml`` (the package's ``hyperparams.yaml.tmpl`` filled with
:class:`string.Template`: the layout of ``speechbrain/lang-id-voxlingua107-ecapa``, Fbank ->
sentence mean norm -> ECAPA-TDNN -> x-vector classifier), the two checkpoints and the label
encoder; :func:`check_init_dir` and :func:`load_weights` let a run continue from such a directory.

Example
-------
>>> from lid_spark.tools.pretrain_spoken_lid.settings import PretrainSettings
>>> text = hyperparams_yaml(PretrainSettings(channels=32), n_languages=3)
>>> [line for line in text.splitlines() if line.startswith(("out_n_neurons", "    channels"))]
['out_n_neurons: 3', '    channels: [32, 32, 32, 32, 96]']
>>> language_label("ta")
'ta: Tamil'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from lid_spark.errors import ParameterError
from lid_spark.tools.pretrain_spoken_lid.settings import SECTION, PretrainSettings

HYPERPARAMS_TEMPLATE = "hyperparams.yaml.tmpl"
MODEL_FILES = ("hyperparams.yaml", "embedding_model.ckpt", "classifier.ckpt", "label_encoder.ckpt",
               "checksums.json", "training.json")


def hyperparams_yaml(settings: PretrainSettings, n_languages: int) -> str:
    """The ``hyperparams.yaml`` of the model: speechbrain's lang-id-voxlingua107-ecapa layout."""
    template = resources.files(__package__).joinpath(HYPERPARAMS_TEMPLATE).read_text(encoding="utf-8")
    return Template(template).substitute(n_languages=n_languages, n_mels=settings.n_mels,
                                         lin_neurons=settings.lin_neurons, channels=settings.channels,
                                         last_channels=3 * settings.channels)


def language_label(code: str) -> str:
    """VoxLingua107-style label, ``"ta"`` -> ``"ta: Tamil"`` (English name from CLDR)."""
    from babel import Locale

    name = Locale("en").languages.get({"cmn": "zh"}.get(code, code), code)
    return f"{code}: {name}"


def save_model(out_dir: str | Path, settings: PretrainSettings, hparams: dict, float16: bool = True) -> Path:
    """Write the speechbrain model directory: hyperparams.yaml, checkpoints, labels (the caller adds checksums.json)."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*"):
        if stale.is_file() and stale.name in MODEL_FILES:
            stale.unlink()
    (out / "hyperparams.yaml").write_text(hyperparams_yaml(settings, len(settings.languages)))
    for name in ("embedding_model", "classifier"):
        state = {key: (value.to(torch.float16) if float16 and value.is_floating_point() else value).clone()
                 for key, value in hparams[name].state_dict().items()}
        torch.save(state, out / f"{name}.ckpt")
    encoder = hparams["label_encoder"]
    encoder.update_from_iterable([language_label(code) for code in settings.languages])
    encoder.save(out / "label_encoder.ckpt")
    return out


def check_init_dir(model_dir: str | Path, languages) -> None:
    """ParameterError unless ``model_dir`` is a model directory trained on exactly ``languages``."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    model_dir = Path(model_dir)
    if not (model_dir / "label_encoder.ckpt").is_file():
        raise ParameterError(f"--init {model_dir} is not a model directory written by pretrain_spoken_lid")
    encoder = CategoricalEncoder()
    encoder.load(model_dir / "label_encoder.ckpt")
    previous = [encoder.ind2lab[i] for i in range(len(encoder))]
    if previous != [language_label(code) for code in languages]:
        raise ParameterError(f"--init model {model_dir} has other languages than {SECTION}.languages")


def load_weights(hparams: dict, model_dir: str | Path) -> None:
    """Start from the weights of an earlier model directory (same architecture and languages)."""
    import torch

    model_dir = Path(model_dir)
    for name in ("embedding_model", "classifier"):
        state = torch.load(model_dir / f"{name}.ckpt", map_location="cpu")
        try:
            hparams[name].load_state_dict(state)
        except RuntimeError as exc:
            raise ParameterError(f"--init model {model_dir} has another architecture ({name}): {exc}") from None
