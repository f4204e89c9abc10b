"""torch Dataset over index rows: the same `preprocess.prepare` that inference uses."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from deeproot.diagnose.preprocess import Preprocess, prepare
from deeproot.errors import DataError
from deeproot.training.metrics import to_classes


class ImageRows(torch.utils.data.Dataset):
    """(image tensor [3,H,W], class labels [n_symptoms]) per index row.

    Augmentation (training only) is horizontal and vertical flips: they keep colour and texture,
    which carry every label, and a microscope close-up has no up or down.
    """

    def __init__(
        self,
        rows: list[dict[str, Any]],
        symptoms: tuple[str, ...],
        n_classes: int,
        pre: Preprocess,
        augment: bool = False,
    ) -> None:
        self.paths = [r["path"] for r in rows]
        self.labels = np.stack([to_classes([r[k] for r in rows], n_classes) for k in symptoms], 1)
        self.pre = pre
        self.augment = augment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with Image.open(self.paths[i]) as im:
                arr = prepare(im, self.pre)
        except OSError as exc:
            raise DataError(
                f"cannot read image {self.paths[i]} ({exc}); rebuild the index"
            ) from exc
        if self.augment:
            if np.random.random() < 0.5:
                arr = arr[:, :, ::-1]
            if np.random.random() < 0.5:
                arr = arr[:, ::-1, :]
        return torch.from_numpy(np.ascontiguousarray(arr)), torch.from_numpy(self.labels[i])
