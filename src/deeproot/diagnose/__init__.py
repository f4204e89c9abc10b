"""Scalp diagnosis: preprocessing, model bundles, training, export, inference, scalp-type rules.

Kept free of heavy imports: torch, numpy, PIL and onnxruntime are imported inside functions.
"""
