"""Training EfficientNet-B1 severity classifiers on a dataset index (extra `train`).

`train(config)` splits the index by visit (no visit in two splits), trains one multi-head model
(or one single-head model for one symptom), evaluates every epoch against the majority baseline,
keeps the best checkpoint by mean macro-F1 and writes everything into the run folder:
`args.yaml`, `run.json`, `split.json`, `metrics.jsonl` (one line per epoch), `best.pt`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from deeproot.diagnose.preprocess import Preprocess
from deeproot.errors import DataError, InputError, require
from deeproot.taxonomy import SEVERITIES_3, SEVERITIES_4, SYMPTOM_KEYS, symptom
from deeproot.training.dataset import read_index
from deeproot.training.metrics import summarize, to_classes

log = logging.getLogger(__name__)
RUN_FORMAT = "deeproot-run/1"
# Seed recipe (SPEC §8): grayscale where contrast carries the signal; colour for the erythemas.
GRAY_BY_DEFAULT = ("fine_scale", "dandruff", "excess_sebum")
Progress = Callable[[str, int, int, dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """One training run; every field is recorded in args.yaml."""

    index: str
    out: str
    symptom: str = "all"
    per_symptom: bool = False
    classes: int = 3
    size: str = "240"
    resize: str = "letterbox"
    grayscale: str = "auto"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "ce"
    focal_gamma: float = 2.0
    class_weights: bool = True
    scheduler: str = "cosine"
    val_frac: float = 0.2
    split: str = "hash"
    seed: int = 0
    limit: int = 0
    augment: bool = True
    drop_path: float = 0.2
    pretrained: bool = False
    weights: str | None = None
    device: str = "auto"
    workers: int = 0
    threads: int = 0

    def check(self) -> None:
        """Raise InputError naming the first bad option."""
        if self.symptom != "all":
            symptom(self.symptom)
        choices = {
            "classes": (3, 4),
            "resize": ("letterbox", "stretch"),
            "grayscale": ("auto", "on", "off"),
            "loss": ("ce", "focal"),
            "scheduler": ("cosine", "none"),
            "split": ("hash", "original"),
            "device": ("auto", "cpu", "cuda"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                opts = ", ".join(map(str, allowed))
                raise InputError(f"--{name} must be one of {opts}, got {getattr(self, name)!r}")
        parse_size(self.size)
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError("--epochs and --batch-size must be >= 1 and --lr > 0")
        if not 0 < self.val_frac < 1:
            raise InputError(f"--val-frac must lie in (0, 1), got {self.val_frac}")


@dataclass(frozen=True)
class TrainResult:
    """Where a run went and how its best epoch scored."""

    run_dir: Path
    symptoms: tuple[str, ...]
    best_epoch: int
    best_score: float
    metrics: dict[str, dict[str, Any]]
    n_train: int
    n_val: int
    images_per_s: float


def parse_size(text: str | int) -> tuple[int, int]:
    """ "240" -> (240, 240); "180x240" -> (height 180, width 240)."""
    s = str(text).lower().strip()
    try:
        h, w = (int(p) for p in s.split("x")) if "x" in s else (int(s), int(s))
    except ValueError as exc:
        raise InputError(f"--size must be N or HxW in pixels, got {text!r}") from exc
    if not (32 <= h <= 1024 and 32 <= w <= 1024):
        raise InputError(f"--size must lie in 32..1024 pixels, got {text!r}")
    return h, w


def preprocess_for(cfg: TrainConfig, symptoms: tuple[str, ...]) -> Preprocess:
    """The preprocessing a run uses (and its exported bundle records)."""
    gray = cfg.grayscale == "on" or (
        cfg.grayscale == "auto" and len(symptoms) == 1 and symptoms[0] in GRAY_BY_DEFAULT
    )
    return Preprocess(size=parse_size(cfg.size), resize=cfg.resize, grayscale=gray)


def _visit_hash(seed: int, visit: str) -> float:
    digest = hashlib.sha1(f"{seed}:{visit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_visit(
    rows: list[dict[str, Any]], val_frac: float, seed: int, policy: str = "hash"
) -> tuple[list[int], list[int]]:
    """Row indices of (train, val), grouped by visit so no visit is in both.

    Policies: "hash" puts a visit in val when a seeded hash of its id falls under `val_frac`;
    "original" keeps the release's split, sending a visit to val only when none of its images
    is in Training (images in both splits count as Training, which removes the overlap).
    """
    by_visit: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_visit.setdefault(r["visit_id"], []).append(i)
    train: list[int] = []
    val: list[int] = []
    for visit, idx in sorted(by_visit.items()):
        if policy == "original":
            to_val = all(rows[i]["split"] == "Validation" for i in idx)
        else:
            to_val = _visit_hash(seed, visit) < val_frac
        (val if to_val else train).extend(idx)
    if not train or not val:
        raise DataError(
            f"split by visit left {len(train)} training and {len(val)} validation images; "
            "use more visits or another --val-frac/--split"
        )
    return sorted(train), sorted(val)


def _limit(rows: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    if limit <= 0 or limit >= len(rows):
        return rows
    visits = sorted({r["visit_id"] for r in rows}, key=lambda v: _visit_hash(seed + 1, v))
    keep: set[str] = set()
    n = 0
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["visit_id"]] = counts.get(r["visit_id"], 0) + 1
    for v in visits:
        if n >= limit:
            break
        keep.add(v)
        n += counts[v]
    return [r for r in rows if r["visit_id"] in keep]


def _device(torch: Any, name: str) -> Any:
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def class_weights(y: Any, n_classes: int) -> Any:
    """Inverse-frequency weights n / (K * n_c), clipped to 10; absent classes get weight 0."""
    import numpy as np

    counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
    w = np.divide(counts.sum(), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return np.minimum(w, 10.0)


def train(cfg: TrainConfig, progress: Progress | None = None) -> list[TrainResult]:
    """Run training as configured: one run, or one run per symptom with `per_symptom`.

    `threads` > 0 sets torch's CPU threads for the run (restored afterwards); 1 thread avoids
    the stalls that 2 spinning threads suffer when other processes share a 2-core CPU.
    """
    cfg.check()
    torch = require("torch", "train")
    previous = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        if cfg.symptom == "all" and cfg.per_symptom:
            return [
                _train_one(replace(cfg, symptom=k, out=str(Path(cfg.out) / k)), (k,), progress)
                for k in SYMPTOM_KEYS
            ]
        symptoms = SYMPTOM_KEYS if cfg.symptom == "all" else (symptom(cfg.symptom).key,)
        return [_train_one(cfg, symptoms, progress)]
    finally:
        torch.set_num_threads(previous)


def make_loader(
    rows: list[dict[str, Any]],
    symptoms: tuple[str, ...],
    n_classes: int,
    pre: Preprocess,
    batch_size: int,
    shuffle: bool,
    augment: bool,
    workers: int,
    seed: int,
) -> Any:
    """A torch DataLoader over index rows; images go through `preprocess.prepare`."""
    from deeproot.training.images_torch import ImageRows

    torch = require("torch", "train")
    ds = ImageRows(rows, symptoms, n_classes, pre, augment)
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=gen,
        drop_last=shuffle and len(ds) > batch_size,
        persistent_workers=workers > 0,
    )


def predict_logits(model: Any, loader: Any, device: Any) -> tuple[list[Any], Any]:
    """Concatenated logits per head (numpy) and labels [N, heads] over a loader."""
    import numpy as np

    torch = require("torch", "train")
    model.eval()
    outs: list[list[Any]] = []
    labels = []
    with torch.inference_mode():
        for x, y in loader:
            logits = model(x.to(device, non_blocking=True))
            outs.append([lg.float().cpu().numpy() for lg in logits])
            labels.append(y.numpy())
    heads = [np.concatenate([o[h] for o in outs]) for h in range(len(outs[0]))]
    return heads, np.concatenate(labels)


def evaluate(
    heads: list[Any],
    labels: Any,
    symptoms: tuple[str, ...],
    n_classes: int,
    temperature: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-symptom metrics (with majority baseline) from logits and class labels."""
    out = {}
    for h, k in enumerate(symptoms):
        out[k] = summarize(labels[:, h], heads[h].argmax(1), n_classes)
    return out


def _loss_fn(torch: Any, cfg: TrainConfig, weights: list[Any], device: Any) -> Callable:
    nnf = torch.nn.functional
    ws = [
        torch.tensor(w, dtype=torch.float32, device=device) if cfg.class_weights else None
        for w in weights
    ]

    def loss(logits: tuple[Any, ...], y: Any) -> Any:
        total = 0.0
        for h, lg in enumerate(logits):
            lg = lg.float()
            if cfg.loss == "focal":
                logp = nnf.log_softmax(lg, 1).gather(1, y[:, h : h + 1]).squeeze(1)
                term = -((1 - logp.exp()) ** cfg.focal_gamma) * logp
                w = ws[h]
                if w is not None:
                    term = term * w[y[:, h]]
                total = total + term.mean()
            else:
                total = total + nnf.cross_entropy(lg, y[:, h], weight=ws[h])
        return total / len(logits)

    return loss


def _train_one(
    cfg: TrainConfig, symptoms: tuple[str, ...], progress: Progress | None
) -> TrainResult:
    import numpy as np
    import yaml

    torch = require("torch", "train")
    require("torchvision", "train")
    from deeproot.training.models import ARCH, build_model

    torch.manual_seed(cfg.seed)
    rows, report = read_index(cfg.index)
    rows = _limit(rows, cfg.limit, cfg.seed)
    tr_idx, va_idx = split_by_visit(rows, cfg.val_frac, cfg.seed, cfg.split)
    tr_rows, va_rows = [rows[i] for i in tr_idx], [rows[i] for i in va_idx]
    n_classes = cfg.classes
    pre = preprocess_for(cfg, symptoms)
    device = _device(torch, cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.yaml").write_text(yaml.safe_dump(asdict(cfg), allow_unicode=True, sort_keys=False))
    (out / "split.json").write_text(
        json.dumps(
            {
                "train": [r["image_file_name"] for r in tr_rows],
                "val": [r["image_file_name"] for r in va_rows],
            }
        )
    )
    y_train = np.stack([to_classes([r[k] for r in tr_rows], n_classes) for k in symptoms], 1)
    weights = [class_weights(y_train[:, h], n_classes) for h in range(len(symptoms))]
    model = build_model(
        symptoms, n_classes, cfg.pretrained, cfg.weights, drop_path=cfg.drop_path
    ).to(device)
    train_dl = make_loader(
        tr_rows, symptoms, n_classes, pre, cfg.batch_size, True, cfg.augment, cfg.workers, cfg.seed
    )
    val_dl = make_loader(
        va_rows, symptoms, n_classes, pre, cfg.batch_size, False, False, cfg.workers, cfg.seed
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * len(train_dl)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
        if cfg.scheduler == "cosine"
        else None
    )
    loss_fn = _loss_fn(torch, cfg, weights, device)
    classes = list(SEVERITIES_3 if n_classes == 3 else SEVERITIES_4)
    dataset_name = "synthetic" if report.get("synthetic") else "aihub-scalp"
    run: dict[str, Any] = {
        "format": RUN_FORMAT,
        "arch": ARCH,
        "symptoms": list(symptoms),
        "classes": classes,
        "preprocess": pre.to_json(),
        "device": str(device),
        "dataset": {
            "name": dataset_name,
            "index": str(Path(cfg.index).resolve()),
            "index_sha256": report.get("sha256", ""),
            "n_train": len(tr_rows),
            "n_val": len(va_rows),
        },
        "best_epoch": 0,
        "best_score": -1.0,
        "metrics": {},
    }
    log.info(
        "training %s on %d images, validating on %d (%s)",
        ",".join(symptoms),
        len(tr_rows),
        len(va_rows),
        device,
    )
    best = -1.0
    ips = 0.0
    (out / "metrics.jsonl").write_text("")
    for epoch in range(1, cfg.epochs + 1):
        if progress:
            progress("epoch", epoch - 1, cfg.epochs, {})
        model.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for b, (x, y) in enumerate(train_dl):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            seen += len(x)
            loss_sum += float(loss.detach()) * len(x)
            if progress:
                progress("batch", b + 1, len(train_dl), {"loss": loss_sum / seen})
        if device.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        ips = seen / secs if secs > 0 else 0.0
        heads, labels = predict_logits(model, val_dl, device)
        metrics = evaluate(heads, labels, symptoms, n_classes)
        score = float(np.mean([m["macro_f1"] for m in metrics.values()]))
        line = {
            "epoch": epoch,
            "train_loss": round(loss_sum / max(1, seen), 6),
            "lr": opt.param_groups[0]["lr"],
            "train_seconds": round(secs, 3),
            "images_per_s": round(ips, 2),
            "mean_macro_f1": round(score, 6),
            "mean_majority_macro_f1": round(
                float(np.mean([m["majority_macro_f1"] for m in metrics.values()])), 6
            ),
            "val": metrics,
        }
        with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        if score > best:
            best = score
            torch.save(
                {"model": model.state_dict(), "epoch": epoch, "score": score}, out / "best.pt"
            )
            run.update(best_epoch=epoch, best_score=round(score, 6), metrics=metrics)
        run["last_epoch"] = epoch
        (out / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=2))
        if progress:
            progress(
                "epoch", epoch, cfg.epochs, {"mean_macro_f1": score, "loss": line["train_loss"]}
            )
    if not math.isfinite(best):
        raise DataError("training produced no finite score")
    return TrainResult(
        out,
        symptoms,
        run["best_epoch"],
        run["best_score"],
        run["metrics"],
        len(tr_rows),
        len(va_rows),
        ips,
    )
