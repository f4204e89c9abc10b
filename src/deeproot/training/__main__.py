"""`python -m deeproot.training ARGS`: `deeproot train ARGS`, the entry point torchrun starts.

    torchrun --nproc-per-node 4 -m deeproot.training --index index.parquet --out runs/b1
    torchrun --nnodes 2 --node-rank 0 --rdzv-endpoint host:29500 --nproc-per-node 8 \\
        -m deeproot.training --index /data/prepared --out runs/b1

Every process runs the same command; rank 0 writes the run folder and shows progress.
"""

from __future__ import annotations

import sys

from deeproot.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
