"""Report figures (matplotlib, Agg backend: no display needed): PR curves, confusion matrix, Figure 2.

Example
-------
>>> import numpy as np
>>> plot_confusion(np.eye(3, dtype=int), ["de", "en", "ot"], "confusion.png")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lid_spark.errors import ParameterError  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _pr_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-s, kind="mergesort")
    y = y[order]
    tp = np.cumsum(y)
    precision = tp / np.arange(1, len(y) + 1)
    recall = tp / max(y.sum(), 1)
    return np.r_[0.0, recall], np.r_[1.0, precision]


def plot_pr_curves(labels: Sequence[str], scores: np.ndarray, languages: Sequence[str], path,
                   title: str = "Precision-recall per language") -> Path:
    """One precision-recall curve per language (ranking tracks by that language's score)."""
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for j, lang in enumerate(languages):
        y = labels == lang
        if not y.any():
            continue
        recall, precision = _pr_curve(y, np.asarray(scores)[:, j])
        ax.step(recall, precision, where="post", label=lang, linewidth=1.2)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02), title=title)
    ax.legend(ncol=2, fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, languages: Sequence[str], path, title: str = "Confusion (argmax)") -> Path:
    """Row-normalised confusion matrix with counts in the cells."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(languages), len(languages)):
        raise ParameterError(f"matrix must be {len(languages)}x{len(languages)}, got {matrix.shape}")
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_yticks(range(len(languages)), languages)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(languages)):
        for j in range(len(languages)):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    return _save(fig, path)


def plot_tsne_panels(panels: Sequence[tuple[str, np.ndarray]], labels: Sequence[str], languages: Sequence[str],
                     path, seed: int = 0, perplexity: float = 30.0) -> Path:
    """The paper's Figure 2: a t-SNE map per representation of the same tracks, coloured by language.

    Parameters
    ----------
    panels : (title, [tracks, dims] matrix) per sub-figure
    labels : true language per track
    languages : colour order
    seed, perplexity : t-SNE settings (perplexity is capped below the number of tracks)
    """
    from sklearn.manifold import TSNE

    labels = np.asarray(labels)
    if len(labels) < 5:
        raise ParameterError(f"t-SNE needs at least 5 tracks, got {len(labels)}")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    colours = plt.get_cmap("tab20")
    for ax, (title, matrix) in zip(axes[0], panels):
        matrix = np.asarray(matrix, dtype=np.float64)
        if len(matrix) != len(labels):
            raise ParameterError(f"panel {title!r} has {len(matrix)} rows for {len(labels)} labels")
        std = matrix.std(axis=0)
        matrix = (matrix - matrix.mean(axis=0)) / np.where(std > 0, std, 1.0)
        points = TSNE(n_components=2, perplexity=min(perplexity, (len(labels) - 1) / 3.0), init="pca",
                      random_state=seed).fit_transform(matrix)
        for k, lang in enumerate(languages):
            mask = labels == lang
            if mask.any():
                ax.scatter(points[mask, 0], points[mask, 1], s=6, color=colours(k % 20), label=lang)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def plot_intervals(rows: dict, path, title: str, reference: dict | None = None, xlabel: str = "test mAP") -> Path:
    """One horizontal bar per row: its value with its 95 % interval; ``reference`` values (the paper's) as marks.

    ``rows``: name -> {"map": value, "interval": [low, high]} (a None value is left out).
    """
    names = [n for n, r in rows.items() if r.get("map") is not None]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))
    values = np.array([rows[n]["map"] for n in names], dtype=float)
    low = np.array([rows[n]["interval"][0] for n in names], dtype=float)
    high = np.array([rows[n]["interval"][1] for n in names], dtype=float)
    ax.barh(y, values, color="#4c72b0", alpha=0.8, label="ours")
    ax.errorbar(values, y, xerr=[np.clip(values - low, 0, None), np.clip(high - values, 0, None)], fmt="none",
                ecolor="black", capsize=3, label="95% bootstrap interval")
    for i, name in enumerate(names):
        if reference and reference.get(name) is not None:
            ax.plot([reference[name]], [i], marker="D", color="#dd8452", linestyle="none",
                    label="paper" if i == next(j for j, n in enumerate(names) if reference.get(n) is not None)
                    else None)
    ax.set_yticks(y, names)
    ax.set_xlim(max(0.0, float(np.nanmin(low)) - 0.05) if len(names) else 0.0, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_stage_seconds(seconds: dict, path, title: str = "Cost per stage") -> Path:
    """Wall and CPU seconds per stage, as paired horizontal bars (``seconds``: stage -> {"wall", "cpu"})."""
    names = list(seconds)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y - 0.2, [seconds[n]["wall"] for n in names], height=0.4, label="wall s")
    ax.barh(y + 0.2, [seconds[n]["cpu"] for n in names], height=0.4, label="CPU s (self + children)")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_reliability(curves: dict[str, list[dict]], path, title: str = "Reliability (top-label confidence)") -> Path:
    """Reliability diagram: per curve (name -> :func:`lid_spark.metrics.reliability_bins` rows), the
    accuracy against the mean confidence of each non-empty bin, marker area by bin count, and the
    diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, rows in curves.items():
        rows = [r for r in rows if r["count"]]
        if not rows:
            continue
        total = sum(r["count"] for r in rows)
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", linewidth=1.2,
                label=name)
        ax.scatter([r["confidence"] for r in rows], [r["accuracy"] for r in rows],
                   s=[400 * r["count"] / total for r in rows], alpha=0.3)
    ax.set(xlabel="mean confidence in bin", ylabel="accuracy in bin", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_guard_tradeoff(points: dict[str, list[tuple[str, float, float]]], path,
                        title: str = "Guard: correct tags kept vs wrong tags caught") -> Path:
    """One marker per (data set, guard variant): x the share of wrong tags caught, y the share of
    correct tags kept (``points``: data set -> [(variant, caught, kept)]; None values are skipped)."""
    fig, ax = plt.subplots(figsize=(6.5, 5))
    markers = "osD^vP*X"
    for k, (dataset, rows) in enumerate(points.items()):
        rows = [r for r in rows if r[1] is not None and r[2] is not None]
        ax.plot([r[1] for r in rows], [r[2] for r in rows], marker=markers[k % len(markers)], linestyle=":",
                label=dataset)
        for variant, caught, kept in rows:
            ax.annotate(variant, (caught, kept), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="wrong tags caught (share)", ylabel="correct tags kept (share)", xlim=(-0.02, 1.02),
           ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)
