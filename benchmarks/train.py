"""Training throughput of the EfficientNet-B1 multi-head model (images/s).

Three figures per input size, each the median over timed steps (robust to other jobs sharing the
CPU): the model alone (forward + backward + AdamW step on tensors already
in memory), preprocessing alone (JPEG decode + `preprocess.prepare`, one process), and end to end
(the DataLoader over a synthetic dataset feeding the model, as `deeproot train` runs it).

    python benchmarks/train.py                       # CPU, this machine
    python benchmarks/train.py --device cuda --sizes 240 --batch 64 --amp bf16 --workers 8
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
    from deeproot.training.models import build_model
    from deeproot.taxonomy import SYMPTOM_KEYS

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


def _e2e_ips(torch, device, rows, size, batch, workers, steps, amp) -> float:  # noqa: ANN001
    from deeproot.training.models import build_model
    from deeproot.diagnose.preprocess import Preprocess
    from deeproot.training.train import make_loader
    from deeproot.taxonomy import SYMPTOM_KEYS

    model = build_model(SYMPTOM_KEYS, 3).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dl = make_loader(rows, SYMPTOM_KEYS, 3, Preprocess(size=size), batch, True, True, workers, 0)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    rates = []
    it = 0
    while it < steps + 2:
        t = time.perf_counter()
        for x, y in dl:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
            it += 1
            if it >= steps + 2:
                break
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
    a = ap.parse_args()

    import torch

    from deeproot.training.dataset import build_index
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
        rows, _ = build_index(Path(tmp) / "ds")
        paths = [r["path"] for r in rows]
        for s in a.sizes.split(","):
            size = parse_size(s)
            model = _model_ips(torch, device, size, a.batch, a.steps, a.amp, a.channels_last)
            prep = _prep_ips(paths[:100], size)
            e2e = _e2e_ips(torch, device, rows, size, a.batch, a.workers, a.steps, a.amp)
            print(
                f"size {size[0]}x{size[1]}: model {model:8.1f} img/s | preprocess (1 proc) "
                f"{prep:7.1f} img/s | end-to-end {e2e:8.1f} img/s "
                f"(= {e2e / model:.2f} x model)"
            )


if __name__ == "__main__":
    main()
