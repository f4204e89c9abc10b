"""Training EfficientNet-B1 severity classifiers on a dataset index (extra `train`).

`train(config)` splits the index by visit (no visit in two splits), trains one multi-head model
(or one single-head model for one symptom), evaluates every epoch against the majority baseline,
keeps the best checkpoint by mean macro-F1 and writes everything into the run folder:
`args.yaml`, `run.json`, `split.json`, `metrics.jsonl` (one line per epoch), `best.pt`,
`last.pt` (everything needed to resume: model, optimizer, scheduler, epoch, RNG states, history)
and `tensorboard/` (scalars, confusion matrices, misclassified images).

The same code runs in one process or in several under torchrun (DistributedDataParallel; gloo on
CPU, NCCL on CUDA): each rank reads its own share of every epoch, validation outputs are gathered
so every rank computes the same metrics, and only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
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
CHECKPOINT_FORMAT = "deeproot-checkpoint/1"
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
    patience: int = 0
    precision: str = "auto"
    tensorboard: bool = True
    prefetch: int = 4
    arch: str = "b1"  # "tiny": a test/smoke-run network (models.TINY_ARCH), never for diagnosis

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
            "precision": ("auto", "bf16", "fp32"),
            "arch": ("b1", "tiny"),
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
        if self.patience < 0 or self.workers < 0 or self.prefetch < 1:
            raise InputError("--patience and --workers must be >= 0, --prefetch >= 1")
        if self.arch != "b1" and (self.pretrained or self.weights):
            raise InputError("--pretrained and --weights need --arch b1 (EfficientNet-B1)")


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
    last_epoch: int = 0
    stopped_early: bool = False


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


def _device(torch: Any, name: str, local_rank: int = 0) -> Any:
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA GPU")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(f"cuda:{local_rank}") if name == "cuda" else torch.device("cpu")


def class_weights(y: Any, n_classes: int) -> Any:
    """Inverse-frequency weights n / (K * n_c), clipped to 10; absent classes get weight 0."""
    import numpy as np

    counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
    w = np.divide(counts.sum(), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return np.minimum(w, 10.0)


def train(
    cfg: TrainConfig, progress: Progress | None = None, resume: bool = False
) -> list[TrainResult]:
    """Run training as configured: one run, or one run per symptom with `per_symptom`.

    `resume` continues the run in `cfg.out` from its `last.pt` (same optimizer, scheduler,
    epoch plan position and RNG states); `cfg` must be the run's own (see `load_run_config`).
    `threads` > 0 sets torch's CPU threads for the run (restored afterwards); 1 thread avoids
    the stalls that 2 spinning threads suffer when other processes share a 2-core CPU.
    Under torchrun (WORLD_SIZE > 1) every process calls this; only rank 0 writes.
    """
    cfg.check()
    torch = require("torch", "train")
    previous = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        if cfg.symptom == "all" and cfg.per_symptom:
            if resume:
                raise InputError(
                    f"{cfg.out} holds per-symptom runs; resume each: --resume {cfg.out}/<symptom>"
                )
            return [
                _train_one(replace(cfg, symptom=k, out=str(Path(cfg.out) / k)), (k,), progress)
                for k in SYMPTOM_KEYS
            ]
        symptoms = SYMPTOM_KEYS if cfg.symptom == "all" else (symptom(cfg.symptom).key,)
        return [_train_one(cfg, symptoms, progress, resume)]
    finally:
        torch.set_num_threads(previous)
        from deeproot.training import distributed

        distributed.shutdown(torch)


def load_run_config(run: str | Path, **overrides: Any) -> TrainConfig:
    """The TrainConfig a run was started with (its args.yaml), with hardware-only overrides
    (workers, threads, device, prefetch)."""
    import yaml

    run = Path(run)
    if not (run / "last.pt").is_file() or not (run / "args.yaml").is_file():
        raise InputError(
            f"{run} is not a resumable run (args.yaml or last.pt missing); start it with "
            "`deeproot train`"
        )
    obj = yaml.safe_load((run / "args.yaml").read_text(encoding="utf-8"))
    known = {f for f in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**{k: v for k, v in obj.items() if k in known})
    allowed = {"workers", "threads", "device", "prefetch"}
    bad = set(overrides) - allowed
    if bad:
        raise InputError(f"--resume keeps the run's options; cannot change {', '.join(bad)}")
    return replace(cfg, out=str(run), **{k: v for k, v in overrides.items() if v is not None})


def load_data(index: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """Index rows, the index report, and the prepared dataset (None for a plain index)."""
    from deeproot.training.sources import is_prepared, load_prepared

    rows, report = read_index(index)
    prepared = load_prepared(index) if is_prepared(index) else None
    return rows, report, prepared


def make_stream(
    rows: list[dict[str, Any]],
    symptoms: tuple[str, ...],
    n_classes: int,
    pre: Preprocess,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    seed: int = 0,
    prepared: Any = None,
    rank: int = 0,
    world: int = 1,
) -> Any:
    """An EpochStream over index rows, reading raw images or a prepared dataset's shards."""
    from deeproot.training.images_torch import EpochStream, labels_of
    from deeproot.training.sources import RawSource, ShardSource

    src = ShardSource(rows, prepared) if prepared is not None else RawSource(rows)
    return EpochStream(
        src,
        labels_of(rows, symptoms, n_classes),
        pre,
        batch_size,
        shuffle=shuffle,
        augment=augment,
        seed=seed,
        rank=rank,
        world=world,
    )


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
    """A DataLoader of (images, labels, sample indices) batches over raw index rows."""
    from deeproot.training.images_torch import make_stream_loader

    ds = make_stream(
        rows, symptoms, n_classes, pre, batch_size, shuffle=shuffle, augment=augment, seed=seed
    )
    return make_stream_loader(ds, workers)


def predict_logits(
    model: Any, loader: Any, device: Any, amp: Any = None, channels_last: bool = False
) -> tuple[list[Any], Any]:
    """Concatenated logits per head (numpy float32) and labels [N, heads] over a loader, in
    sample-index order."""
    heads, labels, _ = _predict(model, loader, device, amp, channels_last)
    return heads, labels


def _predict(
    model: Any, loader: Any, device: Any, amp: Any = None, channels_last: bool = False
) -> tuple[list[Any], Any, Any]:
    import numpy as np

    torch = require("torch", "train")
    model.eval()
    outs: list[list[Any]] = []
    labels, idxs = [], []
    with torch.inference_mode():
        for x, y, idx in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = model(x)
            outs.append([lg.float().cpu().numpy() for lg in logits])
            labels.append(y.numpy())
            idxs.append(idx.numpy())
    if not outs:
        return [], np.zeros((0, 0), np.int64), np.zeros(0, np.int64)
    heads = [np.concatenate([o[h] for o in outs]) for h in range(len(outs[0]))]
    return heads, np.concatenate(labels), np.concatenate(idxs)


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


def _rng_state(torch: Any) -> dict[str, Any]:
    import numpy as np

    np_state: Any = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), *np_state[2:]],
        "python": list(random.getstate()),
    }


def _set_rng_state(torch: Any, st: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(st["torch"])
    if st.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
    n = st["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def _save(torch: Any, obj: Any, path: Path) -> None:
    """torch.save beside the target, then rename: a kill never leaves a torn checkpoint."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _amp_settings(torch: Any, cfg: TrainConfig, device: Any) -> tuple[Any, bool]:
    """(autocast dtype or None, channels-last): bf16 + channels-last by default on CUDA."""
    cuda = device.type == "cuda"
    if cfg.precision == "fp32":
        return None, False
    if cfg.precision == "bf16" or cuda:
        if cuda and not torch.cuda.is_bf16_supported():
            if cfg.precision == "bf16":
                raise InputError("--precision bf16 asked for, but this GPU has no bf16 support")
            return None, False
        return torch.bfloat16, cuda
    return None, False


def _train_one(
    cfg: TrainConfig, symptoms: tuple[str, ...], progress: Progress | None, resume: bool = False
) -> TrainResult:
    import numpy as np
    import yaml

    from deeproot.training import distributed
    from deeproot.training.images_torch import make_stream_loader
    from deeproot.training.sources import digest

    torch = require("torch", "train")
    require("torchvision", "train")
    from deeproot.training.models import ARCHS, build_model

    de = distributed.env()
    device = _device(torch, cfg.device, de.local_rank)
    distributed.init(torch, de, device.type == "cuda")
    if not de.main:
        progress = None
    out = Path(cfg.out)
    ckpt: dict[str, Any] | None = None
    if resume:
        if not (out / "last.pt").is_file():
            raise InputError(f"{out} has no last.pt to resume from; start it with `deeproot train`")
        ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise DataError(f"{out}/last.pt is not a {CHECKPOINT_FORMAT} checkpoint")
    torch.manual_seed(cfg.seed)
    rows, report, prepared = load_data(cfg.index)
    rows = _limit(rows, cfg.limit, cfg.seed)
    tr_idx, va_idx = split_by_visit(rows, cfg.val_frac, cfg.seed, cfg.split)
    tr_rows, va_rows = [rows[i] for i in tr_idx], [rows[i] for i in va_idx]
    n_classes = cfg.classes
    pre = preprocess_for(cfg, symptoms)
    if prepared is not None and (prepared.size != pre.size or prepared.resize != pre.resize):
        ph, pw = prepared.size
        raise InputError(
            f"{cfg.index} was prepared at {ph}x{pw} ({prepared.resize}) but this run asks for "
            f"--size {pre.size[0]}x{pre.size[1]} --resize {pre.resize}; match them or prepare again"
        )
    amp, channels_last = _amp_settings(torch, cfg, device)
    # On CPU (one process, --precision auto) the training steps run channels-last too: B1 trains
    # 1.33x faster at 240 px and 1.75x at 48x64 on one thread. Validation switches the weights
    # back to the default layout, so its logits are those export and evaluate compute (exact
    # argmax parity with the run's metrics); DDP keeps one layout (its gradient buckets).
    cpu_cl = device.type == "cpu" and cfg.precision == "auto" and not de.active
    train_cl = channels_last or cpu_cl
    if de.main:
        out.mkdir(parents=True, exist_ok=True)
        if not resume and (out / "last.pt").is_file():
            log.warning(
                "%s holds an earlier run; starting over (--resume %s continues it)", out, out
            )
        if not resume:
            _write_text(
                out / "args.yaml", yaml.safe_dump(asdict(cfg), allow_unicode=True, sort_keys=False)
            )
            _write_text(
                out / "split.json",
                json.dumps(
                    {
                        "train": [r["image_file_name"] for r in tr_rows],
                        "val": [r["image_file_name"] for r in va_rows],
                    }
                ),
            )
            _write_text(out / "metrics.jsonl", "")
    y_train = np.stack([to_classes([r[k] for r in tr_rows], n_classes) for k in symptoms], 1)
    weights = [class_weights(y_train[:, h], n_classes) for h in range(len(symptoms))]
    model = build_model(
        symptoms,
        n_classes,
        cfg.pretrained and ckpt is None,
        cfg.weights if ckpt is None else None,
        drop_path=cfg.drop_path,
        arch=ARCHS[cfg.arch],
    ).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if de.active:
        distributed.broadcast_buffers(torch, de, model)
        for prm in model.parameters():
            torch.distributed.broadcast(prm.data, src=0)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[de.local_rank] if device.type == "cuda" else None
        )
    else:
        net = model
    stream_kw = {"prepared": prepared, "rank": de.rank, "world": de.world, "seed": cfg.seed}
    train_ds = make_stream(
        tr_rows,
        symptoms,
        n_classes,
        pre,
        cfg.batch_size,
        shuffle=True,
        augment=cfg.augment,
        **stream_kw,
    )
    val_ds = make_stream(
        va_rows,
        symptoms,
        n_classes,
        pre,
        cfg.batch_size,
        shuffle=False,
        augment=False,
        **stream_kw,
    )
    pin = device.type == "cuda"
    train_dl = make_stream_loader(train_ds, cfg.workers, pin, cfg.prefetch)
    val_dl = make_stream_loader(val_ds, cfg.workers, pin, cfg.prefetch)
    steps_per_epoch = len(train_ds)
    if steps_per_epoch == 0:
        raise DataError(
            f"{len(tr_rows)} training images are too few for {de.world} process(es); "
            "use more data or fewer processes"
        )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
        if cfg.scheduler == "cosine"
        else None
    )
    loss_fn = _loss_fn(torch, cfg, weights, device)
    classes = list(SEVERITIES_3 if n_classes == 3 else SEVERITIES_4)
    dataset_name = "synthetic" if report.get("synthetic") else "aihub-scalp"
    run: dict[str, Any] = {
        "format": RUN_FORMAT,
        "arch": ARCHS[cfg.arch],
        "symptoms": list(symptoms),
        "classes": classes,
        "preprocess": pre.to_json(),
        "device": str(device),
        "world_size": de.world,
        "precision": "bf16" if amp is not None else "fp32",
        "channels_last": train_cl,
        "input": "prepared" if prepared is not None else "raw",
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
    state: dict[str, Any] = {
        "epoch": 0,
        "best": -1.0,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
    }
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler") is not None:
            sched.load_state_dict(ckpt["scheduler"])
        state = dict(ckpt["state"])
        state["history"] = [json.loads(h) for h in ckpt["history"]]
        run.update(json.loads(ckpt["run"]))
        _set_rng_state(torch, ckpt["rng"])
        if de.main:
            _restore_files(torch, out, ckpt, state, run)
        log.info("resuming %s after epoch %d", out, state["epoch"])
    log.info(
        "training %s on %d images, validating on %d (%s, %d process(es), %s)",
        ",".join(symptoms),
        len(tr_rows),
        len(va_rows),
        device,
        de.world,
        run["precision"],
    )
    tb = _tensorboard(out, state["epoch"]) if cfg.tensorboard and de.main else None
    ips = 0.0
    stopped = False
    try:
        for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
            if progress:
                progress("epoch", epoch - 1, cfg.epochs, {})
            train_ds.set_epoch(epoch)
            if cpu_cl:
                model.to(memory_format=torch.channels_last)  # in place: the optimizer keeps it
            net.train()
            t0, seen, loss_sum = time.perf_counter(), 0, 0.0
            seen_idx = []
            for b, (x, y, idx) in enumerate(train_dl):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if train_cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    logits = net(x)
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched:
                    sched.step()
                seen += len(x)
                loss_sum += float(loss.detach()) * len(x)
                seen_idx.append(idx.numpy())
                if progress:
                    progress("batch", b + 1, steps_per_epoch, {"loss": loss_sum / seen})
            if device.type == "cuda":
                torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            if cpu_cl:
                model.to(memory_format=torch.contiguous_format)
            # validation on every rank with rank 0's exact weights and statistics
            distributed.broadcast_buffers(torch, de, model)
            heads, labels, vidx = _predict(model, val_dl, device, amp, channels_last)
            mine = np.concatenate(seen_idx) if seen_idx else np.zeros(0, np.int64)
            parts = distributed.all_gather(torch, de, (heads, labels, vidx, mine, loss_sum, seen))
            heads, labels, vidx = _merge_val(parts, len(symptoms))
            all_seen = np.concatenate([p[3] for p in parts])
            seen_total = sum(p[5] for p in parts)
            loss_total = sum(p[4] for p in parts)
            ips = seen_total / secs if secs > 0 else 0.0
            if sorted(vidx.tolist()) != list(range(len(va_rows))):
                raise DataError("validation did not cover every image exactly once")
            metrics = evaluate(heads, labels, symptoms, n_classes)
            score = float(np.mean([m["macro_f1"] for m in metrics.values()]))
            improved = score > state["best"]
            if improved:
                state.update(best=score, best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            names = [tr_rows[i]["image_file_name"] for i in all_seen]
            line = {
                "epoch": epoch,
                "train_loss": round(loss_total / max(1, seen_total), 6),
                "lr": opt.param_groups[0]["lr"],
                "train_seconds": round(secs, 3),
                "images_per_s": round(ips, 2),
                "train_seen": len(names),
                "train_unique": len(set(names)),
                "train_digest": digest(names),
                "val_seen": len(vidx),
                "mean_macro_f1": round(score, 6),
                "mean_majority_macro_f1": round(
                    float(np.mean([m["majority_macro_f1"] for m in metrics.values()])), 6
                ),
                "val": metrics,
            }
            state["history"].append(line)
            stopped = cfg.patience > 0 and state["bad_epochs"] >= cfg.patience
            if improved:
                run.update(best_epoch=epoch, best_score=round(score, 6), metrics=metrics)
            run["last_epoch"] = epoch
            run["stopped_early"] = stopped
            if de.main:
                _checkpoint(torch, out, model, opt, sched, state, run, improved, epoch, score)
                if tb is not None:
                    _log_tensorboard(
                        tb, line, symptoms, classes, heads, labels, vidx, val_ds, va_rows
                    )
            if progress:
                progress(
                    "epoch", epoch, cfg.epochs, {"mean_macro_f1": score, "loss": line["train_loss"]}
                )
            if stopped:
                log.info(
                    "stopping early after epoch %d: no better mean macro-F1 for %d epochs",
                    epoch,
                    cfg.patience,
                )
                break
    finally:
        if tb is not None:
            tb.close()
    if not math.isfinite(state["best"]):
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
        state["epoch"],
        stopped,
    )


def _merge_val(parts: list[Any], n_heads: int) -> tuple[list[Any], Any, Any]:
    """Gathered (heads, labels, indices) of every rank, in sample-index order."""
    import numpy as np

    parts = [p for p in parts if len(p[2])]
    idx = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(idx, kind="stable")
    heads = [np.concatenate([p[0][h] for p in parts])[order] for h in range(n_heads)]
    labels = np.concatenate([p[1] for p in parts])[order]
    return heads, labels, idx[order]


def _checkpoint(
    torch: Any,
    out: Path,
    model: Any,
    opt: Any,
    sched: Any,
    state: dict[str, Any],
    run: dict[str, Any],
    improved: bool,
    epoch: int,
    score: float,
) -> None:
    """last.pt first (the resume point, holding everything), then best.pt, metrics, run.json.

    A kill between two of these writes is repaired on resume from last.pt (`_restore_files`).
    """
    ck = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "state": {k: v for k, v in state.items() if k != "history"},
        "history": [json.dumps(h, ensure_ascii=False) for h in state["history"]],
        "run": json.dumps(run, ensure_ascii=False),
        "rng": _rng_state(torch),
    }
    _save(torch, ck, out / "last.pt")
    if improved:
        _save(torch, {"model": ck["model"], "epoch": epoch, "score": score}, out / "best.pt")
    with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(state["history"][-1], ensure_ascii=False) + "\n")
    _write_text(out / "run.json", json.dumps(run, ensure_ascii=False, indent=2))


def _restore_files(
    torch: Any, out: Path, ckpt: dict[str, Any], state: dict[str, Any], run: dict[str, Any]
) -> None:
    """Make metrics.jsonl, run.json and best.pt agree with last.pt (a kill may have struck
    between writes, or after later lines were written)."""
    _write_text(
        out / "metrics.jsonl",
        "".join(json.dumps(h, ensure_ascii=False) + "\n" for h in state["history"]),
    )
    _write_text(out / "run.json", json.dumps(run, ensure_ascii=False, indent=2))
    best = out / "best.pt"
    have = torch.load(best, map_location="cpu", weights_only=True) if best.is_file() else {}
    if state["best_epoch"] == state["epoch"] and have.get("epoch") != state["epoch"]:
        _save(
            torch,
            {"model": ckpt["model"], "epoch": state["epoch"], "score": state["best"]},
            best,
        )


def _tensorboard(out: Path, epoch: int) -> Any:
    """A SummaryWriter in OUT/tensorboard; events after `epoch` from a killed run are purged."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # pragma: no cover - tensorboard is part of the train extra
        log.warning("tensorboard is not installed; no TensorBoard logs")
        return None
    return SummaryWriter(str(out / "tensorboard"), purge_step=epoch + 1 if epoch else None)


def _log_tensorboard(
    tb: Any,
    line: dict[str, Any],
    symptoms: tuple[str, ...],
    classes: list[str],
    heads: list[Any],
    labels: Any,
    vidx: Any,
    val_ds: Any,
    va_rows: list[dict[str, Any]],
    n_images: int = 6,
) -> None:
    """Scalars, one confusion-matrix figure and a few misclassified validation images."""
    import numpy as np

    from deeproot.training.plots import confusion_figure

    e = line["epoch"]
    for k in ("train_loss", "lr", "images_per_s", "mean_macro_f1", "mean_majority_macro_f1"):
        tb.add_scalar(
            f"train/{k}" if k in ("train_loss", "lr", "images_per_s") else f"val/{k}", line[k], e
        )
    for k, m in line["val"].items():
        for name in ("macro_f1", "balanced_accuracy", "qwk", "accuracy"):
            tb.add_scalar(f"{k}/{name}", m[name], e)
        tb.add_scalar(f"{k}/majority_macro_f1", m["majority_macro_f1"], e)
    fig = confusion_figure({k: line["val"][k]["confusion"] for k in symptoms}, classes)
    tb.add_figure("val/confusion", fig, e)
    wrong = [
        int(i)
        for j, i in enumerate(vidx)
        if any(heads[h][j].argmax() != labels[j, h] for h in range(len(symptoms)))
    ][:n_images]
    pos = {int(i): j for j, i in enumerate(vidx)}
    text = ["| image | symptom | true | predicted |", "|---|---|---|---|"]
    mean = np.asarray(val_ds.pre.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(val_ds.pre.std, np.float32).reshape(3, 1, 1)
    for n, i in enumerate(wrong):
        img = np.clip(val_ds.load(i) * std + mean, 0, 1)
        tb.add_image(f"misclassified/{n}", img, e)
        j = pos[i]
        for h, k in enumerate(symptoms):
            p = int(heads[h][j].argmax())
            if p != labels[j, h]:
                text.append(
                    f"| {n}: {va_rows[i]['image_file_name']} | {k} | {classes[labels[j, h]]} "
                    f"| {classes[p]} |"
                )
    if wrong:
        tb.add_text("misclassified", "\n".join(text), e)
    tb.flush()
