"""What the synthetic world looks like: sizes, balance, speed, quick per-modality baselines, a gallery.

The baselines are deliberately simple and cheap, to show that every modality carries signal
and none is trivial: a logistic regression on mean/std MFCCs of the mix (audio) and a
co-listening vote over same-session co-occurrence counts (consumption). Both are scored by
macro mean average precision with artist-grouped cross-validation (like the artist-level split
downstream), next to the chance level (class priors).

Example
-------
>>> import numpy as np
>>> y = np.array(["en", "fr", "en", "fr"])
>>> round(macro_average_precision(y, np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]), ["en", "fr"]), 2)
1.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lid_spark import LANGUAGE_CLASSES, reports


def macro_average_precision(y: np.ndarray, scores: np.ndarray, classes) -> float:
    """Mean over classes (present in ``y``) of the average precision of ``scores[:, k]``."""
    from sklearn.metrics import average_precision_score

    aps = [average_precision_score(y == c, scores[:, k]) for k, c in enumerate(classes) if (y == c).any()]
    return float(np.mean(aps)) if aps else float("nan")


def _folds(groups: np.ndarray, n_splits: int) -> list[np.ndarray]:
    from sklearn.model_selection import GroupKFold

    n_splits = min(n_splits, len(np.unique(groups)))
    return [test for _, test in GroupKFold(n_splits=n_splits).split(groups, groups=groups)]


def audio_baseline(features: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int = 5) -> float:
    """Macro mAP of logistic regression on per-track audio features, artist-grouped CV."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes = sorted(np.unique(y))
    scores = np.zeros((len(y), len(classes)))
    for test in _folds(groups, n_splits):
        train = np.setdiff1d(np.arange(len(y)), test)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
        model.fit(features[train], y[train])
        proba = model.predict_proba(features[test])
        for k, c in enumerate(model.classes_):
            scores[test, classes.index(c)] = proba[:, k]
    return macro_average_precision(y, scores, classes)


def sessionize(plays: pd.DataFrame, gap_minutes: float = 30.0) -> np.ndarray:
    """Session key per play: its session_id where given, else a new session after ``gap_minutes`` idle."""
    plays = plays.sort_values(["user_id", "ts"], kind="stable")
    new = (plays["user_id"] != plays["user_id"].shift()) | (plays["ts"].diff() > pd.Timedelta(minutes=gap_minutes))
    gap_session = "g" + plays["user_id"] + "-" + new.cumsum().astype(str)
    key = plays["session_id"].where(plays["session_id"].notna(), gap_session)
    return key.reindex(sorted(plays.index)).to_numpy()


def co_listening_baseline(plays: pd.DataFrame, track_ids: np.ndarray, y: np.ndarray, groups: np.ndarray,
                          max_session_tracks: int = 200, n_splits: int = 5) -> float:
    """Macro mAP of a co-listening vote: a track scores each class by its co-occurrence with
    training tracks of that class (sessions longer than ``max_session_tracks`` -- bots -- dropped)."""
    from scipy import sparse

    index = {t: i for i, t in enumerate(track_ids)}
    plays = plays.assign(session=sessionize(plays))
    plays = plays[plays["track_id"].isin(index)].drop_duplicates(["session", "track_id"])
    sizes = plays.groupby("session")["track_id"].transform("size")
    plays = plays[(sizes > 1) & (sizes <= max_session_tracks)]
    sessions, session_index = np.unique(plays["session"].to_numpy(), return_inverse=True)
    rows = plays["track_id"].map(index).to_numpy()
    incidence = sparse.csr_matrix((np.ones(len(rows)), (rows, session_index)), shape=(len(track_ids), len(sessions)))
    co = (incidence @ incidence.T).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    classes = sorted(np.unique(y))
    onehot = (y[:, None] == np.array(classes)[None, :]).astype(float)
    scores = np.zeros((len(y), len(classes)))
    for test in _folds(groups, n_splits):
        train_mask = np.ones(len(y), dtype=bool)
        train_mask[test] = False
        votes = co[test] @ (onehot * train_mask[:, None])
        totals = votes.sum(axis=1, keepdims=True)
        scores[test] = (votes + 1e-3) / (totals + 1e-3 * len(classes))
    return macro_average_precision(y, scores, classes)


def chance_level(y: np.ndarray) -> float:
    """Macro mAP of a constant score: the mean class prior."""
    classes = sorted(np.unique(y))
    return float(np.mean([(y == c).mean() for c in classes]))


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int = 64, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Log mel power spectrogram in dB relative to its maximum, shape (n_mels, frames)."""
    from lid_spark.tools.synth.dsp import mel_filterbank

    frames = np.lib.stride_tricks.sliding_window_view(np.pad(wave, (0, n_fft)), n_fft)[::hop] * np.hanning(n_fft)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ mel_filterbank(sample_rate, n_fft, n_mels).T
    db = 10 * np.log10(power + 1e-10)
    return np.maximum(db - db.max(), -80.0).T


def gallery(paths_by_class: dict[str, str], out_png: Path, order=LANGUAGE_CLASSES) -> None:
    """One log-mel spectrogram per language class in a grid (the first sung song of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    classes = [c for c in order if c in paths_by_class]
    cols = 3
    rows = (len(classes) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, c in zip(axes.ravel(), classes):
        wave, sr = sf.read(paths_by_class[c], dtype="float32")
        mel = log_mel(wave, sr)
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, wave.size / sr, 0, mel.shape[0]))
        ax.axis("on")
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("mel band", fontsize=8)
        ax.set_title(f"{c}: {Path(paths_by_class[c]).stem}", fontsize=9)
    fig.suptitle("lid-spark synthetic world: one song per language class (log-mel spectrogram of the mix)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    plt.close(fig)


def write_report(summary: dict, report_dir: Path) -> None:
    """``synth_report.json`` (the summary as is) and a readable ``synth_report.md``."""
    lines = ["# Synthetic world", ""]
    sizes = summary.get("sizes", {})
    lines += ["| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sizes.items()] + [""]
    speed = summary.get("speed")
    if speed:
        lines += ["## Speed", "",
                  f"{speed['audio_seconds']:.0f} s of audio in {speed['wall_seconds']:.1f} s wall clock "
                  f"with {speed['workers']} worker(s): "
                  f"**{speed['audio_seconds_per_second']:.1f} audio seconds per second**.", ""]
    balance = summary.get("label_balance", {})
    if balance:
        lines += ["## Labels per class", "", "| class | tracks |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in balance.items()] + [""]
    baselines = summary.get("baselines")
    if baselines:
        lines += ["## Quick per-modality baselines (macro mAP, artist-grouped 5-fold CV)", "",
                  "| classifier | mAP |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in baselines.items()] + [""]
    if (report_dir / "gallery.png").exists():
        lines += ["## Gallery", "", "![one song per language](gallery.png)", ""]
    reports.write_report(report_dir, "synth_report", "Synthetic world", summary, markdown="\n".join(lines))
