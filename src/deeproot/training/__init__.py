"""The torch side of the classifiers: AI Hub index, synthetic data, models, training, export.

`deeproot.diagnose.bundle` and `deeproot.diagnose.preprocess` are the contract with inference: a
bundle written here is read there. Heavy imports (torch, torchvision, onnx) stay inside functions
or in modules that only training code imports.
"""
