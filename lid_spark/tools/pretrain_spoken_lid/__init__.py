"""Train the offline stand-in for VoxLingua107: an ECAPA-TDNN spoken-language ID on espeak-ng speech.

No model hub is reachable from every cluster, so lid-spark trains its own small spoken-LID model on
synthetic speech in many languages: sentences of native-script CLDR words
(:func:`lid_spark.tools.synth.lexicon.vocabulary`) read by espeak-ng with varied speaker variants,
rates and pitch, a ``sung_share`` of them chanted (words held on notes) for the prosodic variety
that real speech corpora have, augmented with noise, reverberation, filtering, gain and random
crops; a ``music_share`` of them are laid over synthetic accompaniment and, a ``separated_share``
of those, passed through the pipeline's configured separator (``audio.separation``) (VoxLingua107's YouTube speech is
often over music; the vocals this model embeds come out of a separator). The model
has the layout of ``speechbrain/lang-id-voxlingua107-ecapa`` (Fbank -> sentence mean norm ->
ECAPA-TDNN -> x-vector classifier), so speechbrain's ``EncoderClassifier.from_hparams(source=dir)``
loads it.

Modules, in the order a run uses them:

- ``settings``: :class:`~.settings.PretrainSettings`, the ``pretrain_spoken_lid`` config section;
- ``utterances``: spoken, chanted and world-sung espeak-ng sentences by the training or held-out
  voices of :mod:`lid_spark.tools.voices`;
- ``augment``: formant shift, pitch, tempo, reverberation, band limits, noise, lossy codecs, gain,
  crops, voice over music (and separated);
- ``corpus``: the augmented utterances of every language as log-mel features, cached;
- ``model_directory``: ``hyperparams.yaml`` (from ``hyperparams.yaml.tmpl``), checkpoints, labels;
- ``train``: the training loop;
- ``evaluate``: held-out spoken, sung and separated clips, accuracy reports;
- ``run``: :func:`~.run.pretrain`, all of the above in one call (the job ``pretrain_spoken_lid``).
"""

from lid_spark.tools.pretrain_spoken_lid.evaluate import HELDOUT_KINDS
from lid_spark.tools.pretrain_spoken_lid.run import pretrain
from lid_spark.tools.pretrain_spoken_lid.settings import settings_from_config

__all__ = ["HELDOUT_KINDS", "pretrain", "settings_from_config"]
