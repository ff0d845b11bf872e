"""Save a small artifact, for the kill-mid-write tests: ``python -m tests._save_artifact KIND DIR SEED``.

KIND is ``codebook`` or ``classifier``; SEED makes a different artifact. The test sets
LID_SPARK_TEST_FAULT_KILL_AT to kill this process in the middle of the save. Prints the saved
artifact's identity (checksum or model version) when it was not killed.
"""

from __future__ import annotations

import sys


def main(kind: str, directory: str, seed: int) -> str:
    import numpy as np

    if kind == "codebook":
        from lid_spark.audio.timbral import Codebook

        frames = np.random.default_rng(seed).normal(size=(400, 16)).astype(np.float32)
        codebook = Codebook.fit([frames], 16000, n_mels=16, codebook_size=2, seed=seed)
        codebook.save(directory)
        return codebook.checksum
    from lid_spark.model.dataset import add_modality_flags
    from lid_spark.model.train import TrainSettings, artist_split, train_model
    from tests._feature_world import feature_rows, make_world

    rows = add_modality_flags(feature_rows(make_world(tracks_per_language=6, seed=2)))
    rows["split"] = artist_split(rows, (0.5, 0.5, 0.0), seed=0)
    train, val = (rows[rows.split == s].reset_index(drop=True) for s in ("train", "val"))
    classifier = train_model(train, val, TrainSettings(subset="audio", channels=4, epochs=1, seed=seed,
                                                       torch_threads=1, device="cpu"))
    classifier.save(directory)
    return classifier.model_version


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
