"""Seeded, resumable, shardable order of training samples.

The order is an endless stream of epochs; epoch ``e`` is ``randperm(n)`` drawn from a
``torch.Generator`` seeded with ``seed + e``, so any position can be rebuilt from
``(epoch, offset)`` alone. Under DDP each rank takes ``perm[rank::world]`` of the first
``world * (n // world)`` entries (the ``DistributedSampler`` split with ``drop_last``), so ranks
see disjoint samples and equally many. Batches may span an epoch boundary; no sample is dropped
within a rank's shard.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class SeededBatchSampler(Sampler[list[int]]):
    """Endless batches of indices; pass as ``DataLoader(batch_sampler=...)``.

    Because a ``DataLoader`` prefetches, the live position runs ahead of training; the trainer
    asks :meth:`state_after` for the position after the batches it actually consumed.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if n // world_size < 1:
            raise ValueError(f"dataset has {n} samples, fewer than the {world_size} processes")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.shard_len = n // world_size
        self.epoch, self.offset = 0, 0

    def shard(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, in order."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        perm = torch.randperm(self.n, generator=g)[: self.shard_len * self.world_size]
        return perm[self.rank :: self.world_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = self.epoch, self.offset
        order = self.shard(epoch)
        while True:
            batch: list[int] = []
            while len(batch) < self.batch_size:
                take = order[offset : offset + self.batch_size - len(batch)]
                batch += take
                offset += len(take)
                if offset == self.shard_len:
                    epoch, offset = epoch + 1, 0
                    order = self.shard(epoch)
            yield batch

    def __len__(self) -> int:
        """Batches per epoch (rounded up); the stream itself is endless."""
        return -(-self.shard_len // self.batch_size)

    def state_after(self, batches: int) -> dict:
        """``{'epoch', 'offset'}`` after ``batches`` batches from the current start."""
        epoch, offset = divmod(self.offset + batches * self.batch_size, self.shard_len)
        return {"epoch": self.epoch + epoch, "offset": offset}

    def state_dict(self) -> dict:
        return self.state_after(0)

    def load_state_dict(self, state: dict) -> None:
        """Start the next iteration at ``state``; affects iterators created afterwards."""
        epoch, offset = int(state["epoch"]), int(state["offset"])
        if not 0 <= offset < self.shard_len:
            raise ValueError(f"sampler offset {offset} outside a shard of {self.shard_len} samples")
        self.epoch, self.offset = epoch, offset
