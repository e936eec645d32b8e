"""The training sampler: a shuffle that depends only on the seed and the epoch, on one process or many."""

from __future__ import annotations

from torch.utils.data import DistributedSampler


class EpochShuffleSampler(DistributedSampler):
    """A ``DistributedSampler`` that also passes each epoch to its dataset's ``set_epoch``.

    The order of an epoch is drawn from ``seed + epoch`` alone, never from the global random state, so a
    run resumed from a checkpoint at an epoch boundary sees the same batches as an uninterrupted run. With
    ``num_replicas=1`` it is an ordinary shuffle over one process. Lightning calls ``set_epoch`` before it
    creates each epoch's iterator, which is before DataLoader workers start loading, so the dataset can seed
    that epoch's augmentation in time. Lightning keeps a ``DistributedSampler`` it finds in a DataLoader
    instead of replacing it with its own.
    """

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if set_dataset_epoch is not None:
            set_dataset_epoch(epoch)
