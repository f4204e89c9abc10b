"""Figures for TensorBoard and evaluation reports (matplotlib, imported inside functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt() -> Any:
    from deeproot.errors import require

    matplotlib = require("matplotlib", "train")  # evaluate's plots with only `infer` installed

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(confusions: dict[str, Any], classes: list[str], title: str = "") -> Any:
    """One subplot per symptom: counts with row-normalised shading (rows = true class)."""
    import numpy as np

    plt = _plt()
    n = len(confusions)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    ticks = [str(i) for i in range(len(classes))]
    for ax, (k, m) in zip(axes.flat, confusions.items(), strict=False):
        m = np.asarray(m, np.float64)
        norm = m / np.maximum(1, m.sum(1, keepdims=True))
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{int(m[i, j])}",
                    ha="center",
                    va="center",
                    color="white" if norm[i, j] > 0.5 else "black",
                    fontsize=8,
                )
        ax.set_title(k, fontsize=9)
        ax.set_xticks(range(len(ticks)), ticks)
        ax.set_yticks(range(len(ticks)), ticks)
        ax.set_xlabel("predicted class", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reliability_figure(curves: dict[str, dict[str, Any]], title: str = "") -> Any:
    """Reliability diagrams: per symptom, accuracy against confidence per bin, before and after
    temperature scaling, with the diagonal (perfect calibration) and the majority baseline
    (one point: its confidence = the majority share, its accuracy = the same)."""
    plt = _plt()
    n = len(curves)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (k, c) in zip(axes.flat, curves.items(), strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        for key, style, label in (
            ("before", "o-", f"T=1 (ECE {c['ece_before']:.3f})"),
            ("after", "s-", f"T={c['temperature']:.2f} (ECE {c['ece_after']:.3f})"),
        ):
            conf, acc = c[key]
            ax.plot(conf, acc, style, ms=3, lw=1, label=label)
        ax.plot([c["majority_share"]], [c["majority_share"]], "k^", ms=5, label="majority")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("confidence", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save(fig: Any, path: Path) -> Path:
    plt = _plt()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
