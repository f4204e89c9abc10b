"""torch side of the input pipeline: the same `preprocess.prepare` that inference uses.

`EpochStream` is an IterableDataset that builds whole batches in DataLoader workers from an epoch
plan (`deeproot.training.sources`): every (rank, worker) reads its own contiguous share, so raw
JPEGs, zip members and prepared shards are all read by any number of workers and ranks with each
sample exactly once per epoch. Imports torch at module level: import it only inside functions.
"""

from __future__ import annotations

import io
import multiprocessing as mp
from typing import Any

import numpy as np
import torch
from PIL import Image

from deeproot.diagnose.preprocess import Preprocess, prepare
from deeproot.errors import DataError
from deeproot.training.metrics import to_classes
from deeproot.training.sources import epoch_order, rank_block, worker_batches


def labels_of(rows: list[dict[str, Any]], symptoms: tuple[str, ...], n_classes: int) -> Any:
    """Class labels [N, n_symptoms] (int64) of index rows."""
    if not rows:
        return np.zeros((0, len(symptoms)), np.int64)
    return np.stack([to_classes([r[k] for r in rows], n_classes) for k in symptoms], 1)


class EpochStream(torch.utils.data.IterableDataset):
    """Batches (images [B,3,H,W] float32, labels [B,S] int64, sample indices [B] int64).

    Args:
        source: a `RawSource` or `ShardSource` over the split's rows.
        labels: class labels per sample.
        pre: preprocessing (the run's, recorded in the bundle).
        batch: samples per batch on this rank.
        shuffle: training order (seeded by seed and epoch) with full batches only; else every
            sample once, in order.
        augment: random flips, seeded per (seed, epoch, sample) so results do not depend on
            how many workers or ranks there are.
        rank, world: this process's place in a distributed run.

    The epoch lives in shared memory (`set_epoch`), so persistent workers follow it.
    """

    def __init__(
        self,
        source: Any,
        labels: Any,
        pre: Preprocess,
        batch: int,
        *,
        shuffle: bool,
        augment: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        super().__init__()
        self.source = source
        self.labels = np.asarray(labels, np.int64)
        self.pre = pre
        self.batch = batch
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.rank = rank
        self.world = world
        self._epoch = mp.Value("q", 0, lock=False)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.value = epoch

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def block(self, epoch: int | None = None) -> Any:
        """This rank's sample indices for an epoch, in reading order."""
        e = self.epoch if epoch is None else epoch
        order = epoch_order(len(self.source), self.source.groups, self.seed, e, self.shuffle)
        return rank_block(order, self.rank, self.world, self.batch, drop_last=self.shuffle)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        n = len(self.block())
        return (n + self.batch - 1) // self.batch

    def load(self, i: int, epoch: int = 0, augment: bool = False) -> np.ndarray:
        """One sample's input array [3, H, W]."""
        try:
            with Image.open(io.BytesIO(self.source.read(i))) as im:
                arr = prepare(im, self.pre)
        except OSError as exc:
            raise DataError(
                f"cannot decode image {self.source.name(i)} ({exc}); rebuild the index"
            ) from exc
        if augment:
            rng = np.random.default_rng([self.seed, epoch, int(i)])
            flip = rng.random(2)
            if flip[0] < 0.5:
                arr = arr[:, :, ::-1]
            if flip[1] < 0.5:
                arr = arr[:, ::-1, :]
        return np.ascontiguousarray(arr)

    def __iter__(self) -> Any:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        epoch = self.epoch
        for idx in worker_batches(self.block(epoch), self.batch, worker, n_workers):
            x = np.stack([self.load(int(i), epoch, self.augment) for i in idx])
            yield (
                torch.from_numpy(x),
                torch.from_numpy(self.labels[idx]),
                torch.from_numpy(np.asarray(idx, np.int64)),
            )


def make_stream_loader(
    ds: EpochStream, workers: int, pin_memory: bool = False, prefetch: int = 4
) -> Any:
    """A DataLoader over an EpochStream: batches come whole from the workers (batch_size None),
    persistent workers, pinned memory on CUDA, `prefetch` batches in flight per worker."""
    kw: dict[str, Any] = {}
    if workers > 0:
        kw = {"persistent_workers": True, "prefetch_factor": prefetch}
    return torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(ds.seed),
        **kw,
    )
