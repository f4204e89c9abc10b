"""Diagnose benchmark: EfficientNet-B1 bundles through the real inference path.

Builds, in a temporary folder, the two bundle shapes the project ships: a multi-head B1 (one
backbone, six heads: one forward per photo) and a per-symptom bundle (six B1 models), exported
from `deeproot.training.models.MultiHead` with torch.onnx (random weights unless --weights or the
shipped demo bundle's ONNX is used: latency does not depend on weight values). Then measures on
a 640x480 "microscope" photo and a 4000x3000 "phone" photo (synthetic scalp JPEGs):

- warm latency p50/p95 of one photo end to end (`diagnose()`: load, quality check, preprocessing,
  inference, rules, care guide; no catalog), and of the model alone (input -> probabilities);
- cold `deeproot diagnose PHOTO --json` wall time in a fresh process (imports, session creation);
- onnxruntime vs torch eager on the same network;
- fp32 vs int8 (onnxruntime static QDQ quantisation calibrated on synthetic images), with the
  drift: agreement of severities with fp32 and, for a trained bundle, accuracy on synthetic
  validation images drawn with known labels;
- `deeproot --help` wall time;
- the CUDA provider when onnxruntime has it.

`--photo-check [N]` instead reports the photo check's pass/flag rates: N synthetic scalps under
each of eight lights (white, warm, blue, a bluish-white LED ring, dim, red, green, yellow) and
every real photograph bundled with scikit-image and matplotlib, plus a screenshot-like page.

    .venv/bin/python benchmarks/diagnose.py [--runs 30] [--cold 3] [--bundle DIR]
    .venv/bin/python benchmarks/diagnose.py --photo-check 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "deeproot.cli.main"]  # what the `deeproot` script runs


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def timed(fn, runs: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return pct(xs, 0.5), pct(xs, 0.95)


def export_bundle(root: Path, kind: str, size: int = 240) -> Path:
    """A B1 bundle (multihead: one model; per_symptom: six) exported with torch.onnx."""
    import torch

    from deeproot.diagnose.preprocess import Preprocess
    from deeproot.taxonomy import SEVERITIES_3, SYMPTOM_KEYS
    from deeproot.training.models import MultiHead

    torch.manual_seed(0)
    root.mkdir(parents=True)
    groups = [SYMPTOM_KEYS] if kind == "multihead" else [(s,) for s in SYMPTOM_KEYS]
    models = []
    for g in groups:
        net = MultiHead(tuple(g), 3).eval()
        file = "multihead.onnx" if kind == "multihead" else f"{g[0]}.onnx"
        x = torch.zeros(1, 3, size, size)
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(
            net,
            (x,),
            str(root / file),
            input_names=["image"],
            output_names=list(g),
            dynamic_axes={"image": {0: "batch"}, **{s: {0: "batch"} for s in g}},
            opset_version=17,
            **kwargs,
        )
        models.append(
            {
                "file": file,
                "symptoms": list(g),
                "input": "image",
                "outputs": {s: s for s in g},
                "preprocess": Preprocess(size=(size, size)).to_json(),
                "temperature": dict.fromkeys(g, 1.0),
                "metrics": {},
                "dtype": "fp32",
            }
        )
    meta = {
        "format": "deeproot-bundle/1",
        "demo": True,
        "created": "",
        "code_version": "bench",
        "dataset": {"name": "synthetic"},
        "classes": list(SEVERITIES_3),
        "models": models,
    }
    (root / "bundle.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return root


def synthetic_set(n: int, seed: int):
    """n synthetic scalp images with their merged 3-class labels (value 1,2 -> 1; 3 -> 2)."""
    import numpy as np

    from deeproot.training.synthetic import render

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        values = tuple(int(v) for v in rng.integers(0, 4, 6))
        out.append((render(values, rng), tuple((0, 1, 1, 2)[v] for v in values)))
    return out


def quantize_bundle(src: Path, dst: Path, calib) -> Path:
    """Static QDQ int8 copy of a bundle, calibrated on synthetic images."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from deeproot.diagnose.bundle import load_bundle
    from deeproot.diagnose.preprocess import prepare

    b = load_bundle(src)
    shutil.copytree(src, dst)
    meta = json.loads((src / "bundle.json").read_text("utf-8"))
    for m, spec in zip(meta["models"], b.models, strict=True):
        batches = [prepare(img, spec.preprocess)[None] for img, _ in calib]

        class Reader(CalibrationDataReader):
            def __init__(self, batches: list, name: str) -> None:
                self.it, self.name = iter(batches), name

            def get_next(self):
                x = next(self.it, None)
                return None if x is None else {self.name: x.astype(np.float32)}

        pre = dst / f"pre_{m['file']}"
        quant_pre_process(str(spec.path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst / m["file"]),
            Reader(batches, spec.input),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        pre.unlink()
        m["dtype"] = "int8"
    (dst / "bundle.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return dst


LIGHTS = {
    "white": (1.0, 1.0, 1.0),
    "warm": (1.08, 0.96, 0.76),
    "blue": (0.78, 0.92, 1.2),
    "blue-white LED ring": (0.72, 0.9, 1.3),
    "dim": (0.6, 0.6, 0.6),
    "red": (1.15, 0.9, 0.85),
    "green": (0.9, 1.1, 0.9),
    "yellow": (1.1, 1.05, 0.7),
}


def real_photos() -> dict:
    """Every real non-scalp photograph bundled with scikit-image and matplotlib, plus a drawn
    screenshot-like page (name -> RGB image)."""
    import matplotlib
    import numpy as np
    from PIL import Image, ImageDraw
    from skimage import data

    out = {}
    for name in sorted(getattr(data, "__all__", dir(data))):
        f = getattr(data, name, None)
        if (
            name.startswith("_")
            or not callable(f)
            or name
            in ("download_all", "lbp_frontal_face_cascade_filename", "binary_blobs", "data_dir")
        ):
            continue
        try:
            arr = f()
        except Exception:  # noqa: BLE001 - fetched-on-demand data sets are not installed offline
            continue
        if isinstance(arr, tuple):
            arr = arr[0]
        arr = np.asarray(arr)
        if (
            arr.ndim not in (2, 3)
            or min(arr.shape[:2]) < 64
            or arr.ndim == 3
            and arr.shape[2] not in (3, 4)
        ):
            continue
        if arr.dtype != np.uint8:
            arr = (arr.astype(np.float64) / max(1e-9, float(arr.max())) * 255).astype(np.uint8)
        out[f"skimage {name}"] = Image.fromarray(arr).convert("RGB")
    mpl = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    out["matplotlib grace_hopper"] = Image.open(mpl).convert("RGB")
    shot = Image.new("RGB", (1280, 800), (245, 246, 248))
    d = ImageDraw.Draw(shot)
    d.rectangle((0, 0, 1280, 48), fill=(32, 33, 36))
    for r in range(20):
        d.text(
            (270, 80 + r * 30), "Lorem ipsum dolor sit amet, consectetur " * 3, fill=(20, 20, 20)
        )
    d.rectangle((1000, 700, 1200, 750), fill=(26, 115, 232))
    out["screenshot-like page (drawn)"] = shot
    return out


def photo_check(n: int) -> None:
    """Pass/flag rates of `quality()` on tinted synthetic scalps and real non-scalp photos."""
    import numpy as np
    from PIL import Image

    from deeproot.diagnose.images import quality
    from deeproot.training.synthetic import render

    rng = np.random.default_rng(7)
    print("| light | scalps passing | structure score max |")
    print("|---|---|---|")
    total = ok_total = 0
    t = time.perf_counter()
    for light, tint in LIGHTS.items():
        qs = []
        for _ in range(n):
            values = tuple(int(v) for v in rng.integers(0, 4, 6))
            arr = np.asarray(render(values, rng), np.float32) * np.asarray(tint, np.float32)
            qs.append(quality(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))))
        ok = sum(q.ok for q in qs)
        total, ok_total = total + n, ok_total + ok
        print(f"| {light} | {ok}/{n} | {max(q.structure for q in qs):.2f} |")
    per = (time.perf_counter() - t) / total * 1000
    print(f"| all | {ok_total}/{total} ({ok_total / total:.1%}) | (render + check {per:.0f} ms) |")
    real = real_photos()
    print("\n| real non-scalp photo | flagged as | structure |")
    print("|---|---|---|")
    flagged = 0
    for name, im in real.items():
        q = quality(im)
        flagged += not q.ok
        what = q.warnings[0][1].split(";")[0].split(" (")[0] if q.warnings else "PASSED"
        print(f"| {name} | {what} | {q.structure:.2f} |")
    print(f"| all | {flagged}/{len(real)} flagged | |")


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--photo-check":
        photo_check(int(sys.argv[2]) if len(sys.argv) > 2 else 50)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--bundle", type=Path, help="a trained bundle for the int8 accuracy drift")
    ap.add_argument("--skip-int8", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch

    from deeproot.diagnose import infer
    from deeproot.diagnose.bundle import DEMO_BUNDLE, load_bundle
    from deeproot.diagnose.images import load_photo
    from deeproot.diagnose.preprocess import prepare_batch
    from deeproot.diagnose.service import diagnose
    from deeproot.training.synthetic import render

    print(
        f"load average {os.getloadavg()[0]:.1f}, "
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"onnxruntime {ort.__version__}, torch {torch.__version__}, "
        f"providers {ort.get_available_providers()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="deeproot-bench-"))
    try:
        rng = np.random.default_rng(1)
        small = tmp / "micro_640x480.jpg"
        render((1, 2, 1, 0, 1, 1), rng).save(small, quality=90)
        big = tmp / "phone_4000x3000.jpg"
        render((1, 2, 1, 0, 1, 1), rng).resize((4000, 3000)).save(big, quality=90)
        photos = {"640x480": small, "4000x3000": big}

        t = time.perf_counter()
        bundles = {k: export_bundle(tmp / k, k) for k in ("multihead", "per_symptom")}
        print(f"exported B1 bundles in {time.perf_counter() - t:.1f} s")

        results: dict[str, dict] = {}
        for kind, path in bundles.items():
            eng = infer.Engine(load_bundle(path), "cpu")
            for name, photo in photos.items():

                def one(photo=photo, path=path):
                    diagnose([photo], models=path, device="cpu", recommend_products=False)

                p50, p95 = timed(one, args.runs)
                results[f"{kind} {name} end-to-end"] = {"p50_ms": p50, "p95_ms": p95}
                print(
                    f"{kind:12s} {name:10s} warm end-to-end  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
                )
            img = load_photo(small).image
            x = prepare_batch([img], eng.bundle.models[0].preprocess)

            def model_only(eng=eng, x=x):
                for spec, sess in zip(eng.bundle.models, eng._sessions, strict=True):
                    eng._run(spec, sess, x)

            p50, p95 = timed(model_only, args.runs)
            results[f"{kind} model only"] = {"p50_ms": p50, "p95_ms": p95}
            print(f"{kind:12s} model only            p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")

        # torch eager, same network and threads
        from deeproot.taxonomy import SYMPTOM_KEYS
        from deeproot.training.models import MultiHead

        torch.set_num_threads(infer._threads())
        net = MultiHead(SYMPTOM_KEYS, 3).eval()
        xt = torch.from_numpy(
            prepare_batch(
                [load_photo(small).image], load_bundle(bundles["multihead"]).models[0].preprocess
            )
        )
        with torch.inference_mode():
            p50_t, p95_t = timed(lambda: net(xt), args.runs)
        ort_p50 = results["multihead model only"]["p50_ms"]
        print(
            f"torch eager  multihead model only    p50 {p50_t:7.1f} ms  p95 {p95_t:7.1f} ms  "
            f"(onnxruntime {p50_t / ort_p50:.2f}x faster)"
        )
        results["torch eager multihead model only"] = {"p50_ms": p50_t, "p95_ms": p95_t}

        # cold CLI
        for kind, path in bundles.items():
            xs = []
            for _ in range(args.cold):
                t = time.perf_counter()
                subprocess.run(
                    [
                        *CLI,
                        "diagnose",
                        str(small),
                        "--models",
                        str(path),
                        "--device",
                        "cpu",
                        "--json",
                        "--db",
                        str(tmp / "no.duckdb"),
                    ],
                    capture_output=True,
                    check=True,
                    env=dict(os.environ, DEEPROOT_DATA_DIR=str(tmp)),
                )
                xs.append(time.perf_counter() - t)
            results[f"{kind} cold CLI"] = {"median_s": statistics.median(xs)}
            print(
                f"{kind:12s} cold `deeproot diagnose` 640x480  median {statistics.median(xs):.2f} s"
            )
        xs = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([*CLI, "--help"], capture_output=True, check=True)
            xs.append(time.perf_counter() - t)
        print(f"`deeproot --help`  median {statistics.median(xs):.3f} s")
        results["help"] = {"median_s": statistics.median(xs)}

        if not args.skip_int8:
            trained = args.bundle or (
                DEMO_BUNDLE if (DEMO_BUNDLE / "bundle.json").is_file() else None
            )
            if trained and any(m.dtype != "fp32" for m in load_bundle(trained).models):
                print(
                    f"{trained} stores {load_bundle(trained).models[0].dtype} weights, not fp32;"
                    " quantising the random-weight B1 instead"
                )
                trained = None
            src = trained or bundles["multihead"]
            calib = synthetic_set(args.calib, 11)
            t = time.perf_counter()
            q = quantize_bundle(Path(src), tmp / "int8", calib)
            print(f"quantised {src} to int8 in {time.perf_counter() - t:.1f} s")
            e32 = infer.Engine(load_bundle(src), "cpu")
            e8 = infer.Engine(load_bundle(q), "cpu", int8_compute=True)
            x = prepare_batch([load_photo(small).image], e32.bundle.models[0].preprocess)
            for label, e in (("fp32", e32), ("int8", e8)):

                def m(e=e, x=x):
                    for spec, sess in zip(e.bundle.models, e._sessions, strict=True):
                        e._run(spec, sess, x)

                p50, p95 = timed(m, args.runs)
                results[f"{label} {Path(src).name} model only"] = {"p50_ms": p50, "p95_ms": p95}
                print(
                    f"{label} ({Path(src).name}) model only   p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
                )
            val = synthetic_set(args.val, 12)
            syms = e32.bundle.symptoms
            agree = {s: 0 for s in syms}
            acc = {("fp32", s): 0 for s in syms} | {("int8", s): 0 for s in syms}
            p32 = e32.predict([im for im, _ in val])
            p8 = e8.predict([im for im, _ in val])
            for (_, y), a, b in zip(val, p32, p8, strict=True):
                for i, s in enumerate(syms):
                    agree[s] += int(a[s].argmax() == b[s].argmax())
                    acc[("fp32", s)] += int(a[s].argmax() == y[i])
                    acc[("int8", s)] += int(b[s].argmax() == y[i])
            n = len(val)
            print(
                f"int8 vs fp32 on synthetic validation ({n} images, "
                f"{'trained bundle' if trained else 'random weights: agreement only'}):"
            )
            for s in syms:
                line = f"  {s:26s} agreement {agree[s] / n:.1%}"
                if trained:
                    line += (
                        f"  accuracy fp32 {acc[('fp32', s)] / n:.1%}"
                        f"  int8 {acc[('int8', s)] / n:.1%}"
                    )
                print(line)

        if "CUDAExecutionProvider" in ort.get_available_providers():
            for kind, path in bundles.items():
                eng = infer.Engine(load_bundle(path), "cuda")
                x = prepare_batch([load_photo(small).image], eng.bundle.models[0].preprocess)

                def g(eng=eng, x=x):
                    for spec, sess in zip(eng.bundle.models, eng._sessions, strict=True):
                        eng._run(spec, sess, x)

                p50, p95 = timed(g, args.runs)
                print(
                    f"{kind:12s} CUDA model only       p50 {p50:7.1f} ms  p95 {p95:7.1f} ms "
                    f"({eng.provider})"
                )
        else:
            print(
                "CUDA: onnxruntime has no CUDA provider here (install deeproot[gpu] on a GPU box)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
