"""How far JPEGs may be decoded in draft mode (DCT scaling) before the photo check and the model
notice: the same photos loaded with `load_photo(min_size=OLD)` and `(min_size=NEW)`, compared.

Written to decide whether `diagnose()` could decode a 640x480 JPEG at 320x240 (saves ~5 ms of
the ~9 ms photo path: decode, photo check, model input). It cannot: docs/benchmarks.md, Web
service, has the figures (the demo model's severities changed for 1.5-2% of symptoms).

For each photo, saved as a JPEG (quality 90) and loaded both ways:
- the photo check (`quality()`): pass/flag decisions, and the largest change of each measure;
- the shipped demo bundle (trained): class probabilities of the six symptoms, the largest
  absolute change and the share of severities that stay the same.

Photos: N synthetic scalps under each of the eight lights of `benchmarks/diagnose.py
--photo-check` (640x480, and the same upscaled 2x to 1280x960), the real non-scalp photographs
bundled with scikit-image and matplotlib, and a drawn screenshot-like page.

    .venv/bin/python benchmarks/decode_scale.py [--n 50] [--old 480] [--new 256]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench_diagnose():
    spec = importlib.util.spec_from_file_location("bench_diagnose", REPO / "benchmarks/diagnose.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_diagnose"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    import numpy as np
    from PIL import Image

    from deeproot.diagnose import infer
    from deeproot.diagnose.bundle import installed_bundle_path, load_bundle
    from deeproot.diagnose.images import PhotoInput, load_photo, quality
    from deeproot.training.synthetic import render

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50, help="synthetic scalps per light")
    ap.add_argument("--old", type=int, default=480)
    ap.add_argument("--new", type=int, default=256)
    args = ap.parse_args()

    lights = _bench_diagnose().LIGHTS
    bundle = load_bundle(installed_bundle_path())
    eng = infer.engine(bundle, "cpu")

    def jpeg(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    def both(data: bytes):
        a = load_photo(PhotoInput("p.jpg", data), min_size=args.old).image
        b = load_photo(PhotoInput("p.jpg", data), min_size=args.new).image
        return a, b

    fields = ("sharpness", "flat_fraction", "structure", "colourfulness", "chroma", "brightness",
              "clipped")
    rng = np.random.default_rng(7)
    synth = []
    for tint in lights.values():
        for _ in range(args.n):
            values = tuple(int(v) for v in rng.integers(0, 4, 6))
            arr = np.asarray(render(values, rng), np.float32) * np.asarray(tint, np.float32)
            synth.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    t_old = t_new = 0.0
    for label, scale in (("640x480", 1), ("1280x960", 2)):
        passed = [0, 0]
        worst = dict.fromkeys(fields, 0.0)
        max_dp, same, total, sizes = 0.0, 0, 0, set()
        for im in synth:
            if scale != 1:
                im = im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)
            a, b = both(jpeg(im))
            sizes.add((a.size, b.size))
            t = time.thread_time()
            qa = quality(a)
            pa = eng.predict([a])[0]
            t_old += time.thread_time() - t
            t = time.thread_time()
            qb = quality(b)
            pb = eng.predict([b])[0]
            t_new += time.thread_time() - t
            passed[0] += qa.ok
            passed[1] += qb.ok
            for f in fields:
                worst[f] = max(worst[f], abs(getattr(qa, f) - getattr(qb, f)))
            for s in bundle.symptoms:
                max_dp = max(max_dp, float(np.abs(pa[s] - pb[s]).max()))
                same += int(np.argmax(pa[s]) == np.argmax(pb[s]))
                total += 1
        print(f"synthetic scalps {label} (decoded {sorted(sizes)}): photo check passes "
              f"{passed[0]}/{len(synth)} -> {passed[1]}/{len(synth)}; demo model: largest "
              f"|change of a probability| {max_dp:.4f}, severities unchanged {same}/{total}")
        print("  largest change per measure: " + ", ".join(f"{f} {worst[f]:.3f}" for f in fields))
    flagged = [0, 0]
    real = _bench_diagnose().real_photos()
    for name, im in real.items():
        a, b = both(jpeg(im))
        qa, qb = quality(a), quality(b)
        flagged[0] += not qa.ok
        flagged[1] += not qb.ok
        codes = (qa.warnings[0][0] if qa.warnings else "", qb.warnings[0][0] if qb.warnings else "")
        if codes[0] != codes[1]:
            print(f"  {name}: {qa.warnings[:1]} -> {qb.warnings[:1]}")
    print(f"real non-scalp photos: flagged {flagged[0]}/{len(real)} -> {flagged[1]}/{len(real)}")


if __name__ == "__main__":
    main()
