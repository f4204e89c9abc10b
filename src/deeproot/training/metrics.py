"""Classification metrics for ordinal severity classes (numpy only).

Accuracy, balanced accuracy, macro-F1, quadratic weighted kappa, confusion matrix, and the same
figures for the majority baseline (always predicting the split's own commonest class, the strongest
constant predictor on that split), so every reported number comes with what it must beat.
"""

from __future__ import annotations

from typing import Any

MERGE_3 = (0, 1, 1, 2)  # dataset severity 0..3 -> model class (0 / 1+2 / 3)


def to_classes(values: Any, n_classes: int) -> Any:
    """Map dataset severities 0..3 to model classes (identity for 4 classes)."""
    import numpy as np

    v = np.asarray(values, dtype=np.int64)
    if n_classes == 4:
        return v
    if n_classes == 3:
        return np.asarray(MERGE_3, dtype=np.int64)[v]
    raise ValueError(f"n_classes must be 3 or 4, got {n_classes}")


def confusion(y_true: Any, y_pred: Any, n_classes: int) -> Any:
    """Confusion matrix, rows = true class, columns = predicted class."""
    import numpy as np

    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def _scores(m: Any) -> dict[str, float]:
    import numpy as np

    n = m.sum()
    tp = np.diag(m).astype(np.float64)
    support = m.sum(1)
    predicted = m.sum(0)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    used = present | (predicted > 0)
    k = m.shape[0]
    w = (np.subtract.outer(np.arange(k), np.arange(k)) ** 2) / max(1, (k - 1) ** 2)
    expected = np.outer(support, predicted) / max(1, n)
    den = (w * expected).sum()
    qwk = 1.0 - (w * m).sum() / den if den > 0 else 0.0
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[used].mean()) if used.any() else 0.0,
        "qwk": float(qwk),
    }


def summarize(y_true: Any, y_pred: Any, n_classes: int) -> dict[str, Any]:
    """Metrics of predictions and of the majority baseline on the same labels.

    Returns:
        accuracy, balanced_accuracy, macro_f1, qwk, majority_class, majority_accuracy,
        majority_balanced_accuracy, majority_macro_f1, confusion (list of lists), n, support.
    """
    import numpy as np

    y_true = np.asarray(y_true, np.int64)
    m = confusion(y_true, y_pred, n_classes)
    out: dict[str, Any] = {k: round(v, 6) for k, v in _scores(m).items()}
    support = m.sum(1)
    major = int(support.argmax())
    base = _scores(confusion(y_true, np.full_like(y_true, major), n_classes))
    out.update(
        majority_class=major,
        majority_accuracy=round(base["accuracy"], 6),
        majority_balanced_accuracy=round(base["balanced_accuracy"], 6),
        majority_macro_f1=round(base["macro_f1"], 6),
        confusion=m.tolist(),
        n=int(m.sum()),
        support=support.tolist(),
    )
    return out


def expected_calibration_error(probs: Any, y_true: Any, n_bins: int = 10) -> float:
    """ECE over equal-width confidence bins."""
    import numpy as np

    probs = np.asarray(probs, np.float64)
    conf = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(ece)
