"""A model directory in the published layout of ``speechbrain/lang-id-voxlingua107-ecapa``, with random weights.

What is kept from the published repository: its ``hyperparams.yaml`` structure (``pretrained_path``
naming the hub repository, a ``Pretrainer`` whose ``paths`` point under it, Fbank with 60 mel bands,
sentence mean normalisation, ECAPA-TDNN with kernel sizes [5, 3, 3, 3, 1], dilations [1, 2, 3, 4, 1],
attention channels 128 and 256-dimensional embeddings, an x-vector classifier with one 512-unit block
and 107 outputs), its file names (``embedding_model.ckpt``, ``classifier.ckpt``, ``label_encoder.txt``)
and its 107 labels written ``"<code>: <Name>"``. What is shrunk, for speed only: the ECAPA channels,
``[1024, 1024, 1024, 1024, 3072]`` there, are ``[c, c, c, c, 3c]`` here (``channels`` argument).
"""

from __future__ import annotations

from pathlib import Path

# The 107 languages of VoxLingua107, by the codes its label encoder uses (iw and jw are old codes).
VOXLINGUA107 = (
    "ab af am ar as az ba be bg bn bo br bs ca ceb cs cy da de el en eo es et eu fa fi fo fr gl gn gu gv ha haw "
    "hi hr ht hu hy ia id is it iw ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no "
    "oc pa pl ps pt ro ru sa sco sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi war yi yo zh"
).split()

HYPERPARAMS = """# ############################################################################
# Model: ECAPA-TDNN for spoken language identification (VoxLingua107), inference.
# The layout of speechbrain/lang-id-voxlingua107-ecapa; random weights for tests.
# ############################################################################

# Feature parameters
n_mels: 60
left_frames: 0
right_frames: 0
deltas: False

# Pretrain folder (HuggingFace)
pretrained_path: speechbrain/lang-id-voxlingua107-ecapa

# Output parameters
out_n_neurons: 107

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
    left_frames: !ref <left_frames>
    right_frames: !ref <right_frames>
    deltas: !ref <deltas>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 256

classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, 256]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: 512
    out_neurons: !ref <out_n_neurons>

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


def write_voxlingua_layout(directory: Path, channels: int = 128, seed: int = 0) -> Path:
    """Write the model directory; returns it. Weights are random, of the shapes the yaml builds."""
    import langcodes
    import torch
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.lobes.models.Xvector import Classifier

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    widths = [channels] * 4 + [3 * channels]
    (directory / "hyperparams.yaml").write_text(HYPERPARAMS.replace("{channels}", str(widths)), encoding="utf-8")
    torch.manual_seed(seed)
    embedding = ECAPA_TDNN(input_size=60, channels=widths, kernel_sizes=[5, 3, 3, 3, 1], dilations=[1, 2, 3, 4, 1],
                           attention_channels=128, lin_neurons=256)
    classifier = Classifier(input_shape=[None, None, 256], activation=torch.nn.LeakyReLU, lin_blocks=1,
                            lin_neurons=512, out_neurons=len(VOXLINGUA107))
    torch.save(embedding.state_dict(), directory / "embedding_model.ckpt")
    torch.save(classifier.state_dict(), directory / "classifier.ckpt")
    labels = [f"{code}: {langcodes.Language.get(code).display_name()}" for code in VOXLINGUA107]
    lines = [f"'{label}' => {i}" for i, label in enumerate(labels)] + ["================", "'starting_index' => 0"]
    (directory / "label_encoder.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory
