"""Scalp diagnosis, inference only: photo checks, preprocessing, ONNX bundles, scalp-type rules,
care guide. Needs the `infer` extra (onnxruntime, numpy, Pillow) and never imports torch: the torch
side (dataset index, training, export) lives in `deeproot.training`.

Kept free of heavy imports: numpy, PIL and onnxruntime are imported inside functions.
"""
