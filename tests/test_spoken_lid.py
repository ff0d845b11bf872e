"""The spoken-LID embedder on the embedded model: real speechbrain loading, real espeak-ng speech."""

import json
import shutil

import numpy as np
import pytest
import torch

from lid_spark import LANGUAGE_CLASSES, TARGET_LANGUAGES
from lid_spark.audio import spoken_lid
from lid_spark.audio.spoken_lid import (
    EMBEDDED_MODEL_DIR,
    ModelLoadError,
    SpokenLID,
    language_class,
    length_buckets,
    resolve_device,
    target_scores,
)
from lid_spark.errors import ParameterError
from lid_spark.tools.pretrain_spoken_lid.utterances import LEGACY_HELD_OUT, speak_utterance

TEST_LANGUAGES = ("en", "fr", "ta", "ja", "de", "hi")


@pytest.fixture(scope="module")
def lid():
    torch.set_num_threads(2)
    return SpokenLID.load("embedded", device="cpu")


@pytest.fixture(scope="module")
def speech():
    """Two new sentences per language, read by speaker variants the model never heard."""
    rng = np.random.default_rng(4242)
    clips, truth = [], []
    for lang in TEST_LANGUAGES:
        for _ in range(2):
            clips.append(speak_utterance(lang, rng, LEGACY_HELD_OUT)[: 4 * 16000])
            truth.append(lang)
    return clips, truth


def test_embedded_model_loads_with_speechbrain_from_hparams():
    from speechbrain.inference.classifiers import EncoderClassifier

    classifier = EncoderClassifier.from_hparams(source=str(EMBEDDED_MODEL_DIR), run_opts={"device": "cpu"})
    out_prob, _, index, text = classifier.classify_batch(torch.zeros(1, 16000))
    encoder = classifier.hparams.label_encoder
    labels = [encoder.ind2lab[i] for i in range(len(encoder))]
    assert out_prob.shape == (1, len(labels)) and len(labels) >= 40
    assert text[0] == labels[int(index[0])] and ": " in text[0]
    assert {language_class(label) for label in labels} == set(LANGUAGE_CLASSES)


def test_properties_shapes_and_posteriors(lid, speech):
    clips, _ = speech
    assert lid.sample_rate == 16000 and lid.embedding_dim == 128
    assert {label.split(":")[0] for label in lid.languages} >= set(TARGET_LANGUAGES)
    emb, post = lid.embed(clips[:3])
    assert emb.shape == (3, lid.embedding_dim) and emb.dtype == np.float32
    assert post.shape == (3, len(lid.languages)) and post.dtype == np.float32
    assert np.all(np.isfinite(emb)) and np.allclose(post.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(emb[0], emb[1])


@pytest.mark.slow
def test_embedding_is_deterministic(lid, speech):
    clips, _ = speech
    first = lid.embed(clips[:4])
    second = lid.embed(clips[:4])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.slow
def test_batching_by_length_matches_one_at_a_time_in_input_order(lid, speech):
    clips, _ = speech
    # Crops of varied length in a shuffled order: batching must sort, bucket and restore order.
    rng = np.random.default_rng(0)
    varied = [c[: int(rng.integers(16000, c.size))] for c in clips[:8]]
    batched, batched_post = lid.embed(varied, batch_size=8, bucket_ratio=1.3)
    alone = np.stack([lid.embed([c], batch_size=1)[0][0] for c in varied])
    cosine = np.sum(batched * alone, axis=1) / (np.linalg.norm(batched, axis=1) * np.linalg.norm(alone, axis=1))
    assert cosine.min() > 0.98   # mirrored padding of up to bucket_ratio moves embeddings a little
    alone_post = np.stack([lid.embed([c])[1][0] for c in varied])
    np.testing.assert_array_equal(batched_post.argmax(axis=1), alone_post.argmax(axis=1))


def test_heldout_spoken_accuracy_far_above_chance(lid, speech):
    clips, truth = speech
    _, post = lid.embed(clips)
    predicted = [lid.languages[i].split(":")[0] for i in post.argmax(axis=1)]
    accuracy = np.mean([p == t for p, t in zip(predicted, truth)])
    assert accuracy >= 0.75, (predicted, truth)  # chance is 1 / 50
    scores = target_scores(post, lid.languages)
    assert set(scores) == set(LANGUAGE_CLASSES)
    np.testing.assert_allclose(sum(scores.values()), 1.0, atol=1e-4)


def test_target_scores_collapses_other_languages():
    labels = ["en: English", "ru: Russian", "pa: Panjabi", "fi: Finnish", "jpn"]
    scores = target_scores(np.array([[0.1, 0.2, 0.3, 0.15, 0.25]]), labels)
    assert scores["en"][0] == pytest.approx(0.1) and scores["pa"][0] == pytest.approx(0.3)
    assert scores["ja"][0] == pytest.approx(0.25) and scores["ot"][0] == pytest.approx(0.35)
    assert scores["ta"][0] == 0.0
    with pytest.raises(ParameterError):
        target_scores(np.ones((1, 3)), labels)


def test_length_buckets_group_similar_lengths_and_cap_batch_size():
    lengths = [16000, 48000, 17000, 50000, 16500, 15000]
    batches = length_buckets(lengths, batch_size=2, max_ratio=1.2)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) <= 2 for b in batches)
    for b in batches:
        assert max(lengths[i] for i in b) <= 1.2 * min(lengths[i] for i in b)
    with pytest.raises(ParameterError, match="batch_size"):
        length_buckets(lengths, batch_size=0, max_ratio=1.2)


def test_altered_model_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "model"
    shutil.copytree(EMBEDDED_MODEL_DIR, copy)
    ckpt = copy / "classifier.ckpt"
    data = bytearray(ckpt.read_bytes())
    data[-10] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="classifier.ckpt.*sha256"):
        SpokenLID.load(str(copy), device="cpu")
    monkeypatch.setattr(spoken_lid, "EMBEDDED_MODEL_DIR", copy)
    with pytest.raises(ModelLoadError, match="sha256"):
        SpokenLID.load("embedded", device="cpu")
    (copy / "checksums.json").unlink()
    with pytest.raises(ModelLoadError, match="checksums.json"):
        SpokenLID.load("embedded", device="cpu")


def test_local_directory_copy_loads_and_matches_embedded(tmp_path, lid, speech):
    copy = tmp_path / "model"
    shutil.copytree(EMBEDDED_MODEL_DIR, copy)
    other = SpokenLID.load(str(copy), device="cpu")
    assert other.languages == lid.languages
    clip = speech[0][:1]
    np.testing.assert_allclose(other.embed(clip)[0], lid.embed(clip)[0], rtol=0, atol=1e-6)
    assert json.loads((copy / "checksums.json").read_text()).keys() >= {"hyperparams.yaml", "classifier.ckpt"}


@pytest.mark.slow
def test_hub_style_directory_loads_without_fetching(tmp_path, lid, speech):
    """A hub model copied to disk names its repo in pretrained_path; loading must use the local files."""
    copy = tmp_path / "lang-id-copy"
    shutil.copytree(EMBEDDED_MODEL_DIR, copy)
    (copy / "checksums.json").unlink()
    (copy / "label_encoder.ckpt").rename(copy / "label_encoder.txt")
    text = (copy / "hyperparams.yaml").read_text()
    text = "pretrained_path: speechbrain/lang-id-voxlingua107-ecapa\n" + text + (
        "    paths:\n"
        "        embedding_model: !ref <pretrained_path>/embedding_model.ckpt\n"
        "        classifier: !ref <pretrained_path>/classifier.ckpt\n"
        "        label_encoder: !ref <pretrained_path>/label_encoder.txt\n")
    (copy / "hyperparams.yaml").write_text(text)
    hub_style = SpokenLID.load(str(copy), device="cpu", savedir=str(tmp_path / "save"))
    assert hub_style.languages == lid.languages
    np.testing.assert_allclose(hub_style.embed(speech[0][:1])[1], lid.embed(speech[0][:1])[1], atol=1e-6)


def test_hub_id_offline_gives_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="could not fetch.*lang-id-voxlingua107-ecapa.*source=embedded"):
        SpokenLID.load("speechbrain/lang-id-voxlingua107-ecapa", device="cpu", savedir=str(tmp_path / "hub"))


def test_bad_parameters_raise_parameter_error(lid):
    with pytest.raises(ParameterError, match="device"):
        SpokenLID.load("embedded", device="gpu")
    with pytest.raises(ParameterError, match="device"):
        resolve_device("tpu:0")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda:0"
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ParameterError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ParameterError, match="source"):
        SpokenLID.load("no such directory", device="cpu")
    with pytest.raises(ParameterError, match="waveform 1"):
        lid.embed([np.zeros(16000, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(ParameterError, match="NaN"):
        lid.embed([np.full(16000, np.nan, np.float32)])
