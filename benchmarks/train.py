"""Training throughput of the EfficientNet-B1 multi-head model (images/s).

Per input size, each figure the median over timed steps (robust to other jobs sharing the CPU):
- model: forward + backward + AdamW step on tensors already in memory;
- loader: the training DataLoader alone (decode + `preprocess.prepare` + flips, `--workers`
  processes), from the raw 640x480 JPEGs and from prepared shards (`deeproot dataset prepare`,
  tar and Parquet) at the training size;
- end to end: that DataLoader feeding the model, as `deeproot train` runs it, raw vs tar shards.

    python benchmarks/train.py                       # CPU, this machine
    python benchmarks/train.py --device cuda --sizes 240 --batch 64 --amp bf16 \
        --channels-last --workers 14 --visits 400
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def _model_ips(torch, device, size, batch, steps, amp, channels_last) -> float:  # noqa: ANN001
    from deeproot.taxonomy import SYMPTOM_KEYS
    from deeproot.training.models import build_model

    model = build_model(SYMPTOM_KEYS, 3).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    h, w = size
    x = torch.randn(batch, 3, h, w, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (batch, 6), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(x)
            loss = sum(
                torch.nn.functional.cross_entropy(o.float(), y[:, i]) for i, o in enumerate(out)
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        _sync(torch, device)
        t = time.perf_counter()
        step()
        _sync(torch, device)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def _sync(torch, device) -> None:  # noqa: ANN001
    if device.type == "cuda":
        torch.cuda.synchronize()


def _prep_ips(paths: list[str], size) -> float:  # noqa: ANN001
    from PIL import Image

    from deeproot.diagnose.preprocess import Preprocess, prepare

    pre = Preprocess(size=size)
    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            prepare(im, pre)
    return len(paths) / (time.perf_counter() - t)


def _stream(rows, size, batch, prepared=None):  # noqa: ANN001, ANN202
    from deeproot.diagnose.preprocess import Preprocess
    from deeproot.taxonomy import SYMPTOM_KEYS
    from deeproot.training.train import make_stream

    pre = Preprocess(size=size)
    return make_stream(
        rows, SYMPTOM_KEYS, 3, pre, batch, shuffle=True, augment=True, prepared=prepared
    )


def _batches(ds, workers: int, pin: bool, n: int):  # noqa: ANN001, ANN202
    """Yield n batches, cycling epochs (persistent workers keep their state)."""
    from deeproot.training.images_torch import make_stream_loader

    dl = make_stream_loader(ds, workers, pin)
    done, epoch = 0, 1
    while done < n:
        ds.set_epoch(epoch)
        for b in dl:
            yield b
            done += 1
            if done >= n:
                return
        epoch += 1


def _loader_ips(ds, workers: int, steps: int) -> float:  # noqa: ANN001
    rates = []
    t = time.perf_counter()
    for i, (x, _, _) in enumerate(_batches(ds, workers, False, steps + 2)):
        now = time.perf_counter()
        if i >= 2:
            rates.append(len(x) / (now - t))
        t = now
    return statistics.median(rates)


def _e2e_ips(torch, device, ds, workers, steps, amp, channels_last) -> float:  # noqa: ANN001
    from deeproot.taxonomy import SYMPTOM_KEYS
    from deeproot.training.models import build_model

    model = build_model(SYMPTOM_KEYS, 3).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    rates = []
    t = time.perf_counter()
    pin = device.type == "cuda"
    for it, (x, y, _) in enumerate(_batches(ds, workers, pin, steps + 2)):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(x)
            loss = sum(
                torch.nn.functional.cross_entropy(o.float(), y[:, i]) for i, o in enumerate(out)
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(torch, device)
        now = time.perf_counter()
        if it >= 2:  # the time since the previous step includes loading this batch
            rates.append(len(x) / (now - t))
        t = now
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="96x128,144x192,240", help="comma-separated N or HxW")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--visits", type=int, default=30)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--prep-workers", type=int, default=0, help="processes for prepare (0: all)")
    a = ap.parse_args()

    import torch

    from deeproot.training.dataset import build_index, write_index
    from deeproot.training.sources import load_prepared, prepare_dataset
    from deeproot.training.synthetic import generate
    from deeproot.training.train import parse_size

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"device: {a.device} ({name}), {os.cpu_count()} CPU cores, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}, batch {a.batch}, amp {a.amp}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        m = generate(Path(tmp) / "ds", a.visits, seed=0)
        gen = time.perf_counter() - t
        print(
            f"synthetic data: {m.n_folder_entries} files for {len(m.labels)} images in "
            f"{gen:.1f} s ({len(m.labels) / gen:.0f} images/s incl. copies)"
        )
        rows, rep = build_index(Path(tmp) / "ds")
        write_index(rows, rep, Path(tmp) / "index.parquet")
        paths = [r["path"] for r in rows]
        for s in a.sizes.split(","):
            size = parse_size(s)
            shards = {}
            for fmt in ("tar", "parquet"):
                res = prepare_dataset(
                    Path(tmp) / "index.parquet",
                    Path(tmp) / f"prep-{s}-{fmt}",
                    size=size,
                    shard_format=fmt,
                    shard_size=256,
                    workers=a.prep_workers,
                )
                shards[fmt] = load_prepared(res.root)
                print(
                    f"size {s}: prepared {res.n_images} images as {fmt} in {res.seconds:.1f} s "
                    f"({res.n_images / res.seconds:.0f} images/s, {a.prep_workers or 'all'} "
                    f"processes), {res.bytes / res.n_images / 1e3:.1f} kB/image"
                )
            model = _model_ips(torch, device, size, a.batch, a.steps, a.amp, a.channels_last)
            prep = _prep_ips(paths[:100], size)
            lr = _loader_ips(_stream(rows, size, a.batch), a.workers, a.steps)
            lt = _loader_ips(_stream(rows, size, a.batch, shards["tar"]), a.workers, a.steps)
            lp = _loader_ips(_stream(rows, size, a.batch, shards["parquet"]), a.workers, a.steps)
            er = _e2e_ips(
                torch,
                device,
                _stream(rows, size, a.batch),
                a.workers,
                a.steps,
                a.amp,
                a.channels_last,
            )
            et = _e2e_ips(
                torch,
                device,
                _stream(rows, size, a.batch, shards["tar"]),
                a.workers,
                a.steps,
                a.amp,
                a.channels_last,
            )
            print(
                f"size {size[0]}x{size[1]}: model {model:8.1f} img/s | preprocess (1 proc) "
                f"{prep:7.1f} img/s | loader ({a.workers} workers) raw {lr:7.1f}, tar {lt:7.1f}, "
                f"parquet {lp:7.1f} img/s ({lt / lr:.1f}x) | end-to-end raw {er:8.1f} "
                f"(= {er / model:.2f} x model), tar shards {et:8.1f} img/s "
                f"(= {et / model:.2f} x model)"
            )


if __name__ == "__main__":
    main()
