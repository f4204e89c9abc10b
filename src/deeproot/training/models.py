"""EfficientNet-B1 classifiers: one shared backbone with one linear head per symptom.

A per-symptom model is the same network with a single head, so training, export and inference
share one code path. Imports torch at module level: import this module only inside functions.

`arch="tiny"` (`deeproot train --arch tiny`) is for tests and smoke runs only: the same
EfficientNet building blocks (MBConv, the same stem, pooling, heads, ONNX export path) at a
quarter of B0's width and depth (~40k parameters), so plumbing tests (DDP, resume, export
mechanics) run in a fraction of B1's time. It is not meant to diagnose anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from deeproot.errors import InputError

log = logging.getLogger(__name__)
ARCH = "efficientnet_b1"
FEATURES = 1280
TINY_ARCH = "efficientnet_tiny"
# `--arch` name -> the architecture name a run records (run.json "arch")
ARCHS = {"b1": ARCH, "tiny": TINY_ARCH}


def _backbone(arch: str, drop_path: float) -> nn.Module:
    """The feature extractor of `arch` (a run.json "arch" name)."""
    from torchvision.models import efficientnet_b1

    if arch == ARCH:
        return efficientnet_b1(weights=None, stochastic_depth_prob=drop_path).features
    if arch == TINY_ARCH:
        from torchvision.models.efficientnet import EfficientNet, MBConvConfig

        # B0's stage table at width 0.25, depth 0.25 (one block per stage): test/smoke use only
        conf = [
            MBConvConfig(e, k, s, i, o, n, width_mult=0.25, depth_mult=0.25)
            for e, k, s, i, o, n in (
                (1, 3, 1, 32, 16, 1),
                (6, 3, 2, 16, 24, 2),
                (6, 5, 2, 24, 40, 2),
                (6, 3, 2, 40, 80, 3),
                (6, 5, 2, 80, 192, 4),
            )
        ]
        return EfficientNet(conf, dropout=0.0, stochastic_depth_prob=drop_path).features
    raise InputError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS.values())}")


class MultiHead(nn.Module):
    """EfficientNet-B1 features + global average pool + dropout + one Linear head per symptom.

    `forward` returns a tuple of logits [batch, n_classes], one per symptom in `symptoms` order.
    """

    def __init__(
        self,
        symptoms: tuple[str, ...],
        n_classes: int,
        dropout: float = 0.2,
        drop_path: float = 0.2,
        arch: str = ARCH,
    ) -> None:
        super().__init__()
        self.symptoms = tuple(symptoms)
        self.arch = arch
        self.backbone = _backbone(arch, drop_path)
        # channels of the last 1x1 conv: 1280 for B1
        features = [m for m in self.backbone.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleList(nn.Linear(features, n_classes) for _ in symptoms)
        _zero_init_residuals(self.backbone)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.dropout(torch.flatten(self.pool(self.backbone(x)), 1))
        return tuple(h(f) for h in self.heads)


def _zero_init_residuals(features: nn.Module) -> None:
    """Start every residual MBConv block as the identity (last BN scale 0).

    From-scratch training then starts from a shallow network and learns far faster on small data
    (Goyal et al. 2017, "zero-gamma"); pretrained or loaded weights overwrite it.
    """
    from torchvision.models.efficientnet import MBConv

    for m in features.modules():
        if isinstance(m, MBConv) and m.use_res_connect:
            bn = m.block[-1][1]
            if isinstance(bn, nn.BatchNorm2d):
                nn.init.zeros_(bn.weight)


def build_model(
    symptoms: tuple[str, ...],
    n_classes: int,
    pretrained: bool = False,
    weights: str | Path | None = None,
    drop_path: float = 0.2,
    arch: str = ARCH,
) -> MultiHead:
    """A B1 multi-head model: random init, ImageNet weights (`pretrained`, from the torch cache),
    or a weights file.

    `weights` may be a torchvision EfficientNet-B1 state dict (keys `features.*`), a deeproot
    checkpoint (`best.pt`) or a bare MultiHead state dict; only shape-matching tensors load.
    """
    model = MultiHead(symptoms, n_classes, drop_path=drop_path, arch=arch)
    if pretrained:
        load_weights(model, imagenet_weights_file())
    if weights is not None:
        load_weights(model, weights)
    return model


def imagenet_weights_file() -> Path:
    """torchvision's ImageNet EfficientNet-B1 weights in the local torch cache (never
    downloaded); InputError saying how to get them when they are not there."""
    from torchvision.models import EfficientNet_B1_Weights

    url = EfficientNet_B1_Weights.IMAGENET1K_V1.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise InputError(
            f"ImageNet weights are not in the torch cache ({path}); on a machine with internet "
            'run `python -c "import torchvision; torchvision.models.efficientnet_b1('
            "weights='IMAGENET1K_V1')\"` and copy the file there (or set TORCH_HOME), "
            "or start from --weights FILE"
        )
    return path


def load_weights(model: MultiHead, path: str | Path) -> int:
    """Load shape-matching tensors from a weights file; returns how many loaded."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weights file {p} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors
        raise InputError(f"weights file {p} is not a torch state dict ({exc})") from exc
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"weights file {p} holds no state dict")
    own = model.state_dict()
    renamed = {}
    for k, v in state.items():
        key = "backbone." + k[len("features.") :] if k.startswith("features.") else k
        if key in own and own[key].shape == v.shape:
            renamed[key] = v
    if not renamed:
        raise InputError(f"weights file {p} has no tensor matching EfficientNet-B1")
    model.load_state_dict(renamed, strict=False)
    log.info("loaded %d of %d tensors from %s", len(renamed), len(own), p)
    return len(renamed)
