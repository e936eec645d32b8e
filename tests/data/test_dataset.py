"""Files that become unreadable after the pre-flight check, read inside DataLoader workers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import DataLoader

from heldout.data.dataset import DecodedImageCache, ImageFileDataset, collate_skipping_none
from heldout.data.decode import ImageDecodeError
from heldout.data.transforms import build_eval_transform
from heldout.errors import HeldoutError


def _dataset(root: Path, on_bad_file: str, cache: DecodedImageCache | None = None,
             substitute: bool = False) -> ImageFileDataset:
    paths = sorted(root.glob("*/*.png"))
    targets = [0 if path.parent.name == "cat" else 1 for path in paths]
    return ImageFileDataset(paths, targets, build_eval_transform((0.5,) * 3, (0.5,) * 3), image_size=16,
                            on_bad_file=on_bad_file, cache=cache,  # type: ignore[arg-type]
                            substitute_unreadable=substitute)


def _break_two_files(root: Path) -> None:
    (root / "cat" / "0.png").unlink()  # deleted during training
    (root / "dog" / "1.png").write_text("overwritten\n")  # replaced by something that is not an image


def _first_batch_after_break(root: Path, dataset: ImageFileDataset) -> Any:
    """Break two files of ``root``, then return the first batch of six that one worker process loads."""
    _break_two_files(root)
    loader = DataLoader(dataset, batch_size=6, num_workers=1, collate_fn=collate_skipping_none)
    return next(iter(loader))


def test_dataset_skip_drops_broken_files_in_workers(tmp_path: Path,
                                                    write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 3, "dog": 3})
    dataset = _dataset(root, "skip")

    images, targets, indices = _first_batch_after_break(root, dataset)

    assert images.shape == (4, 3, 16, 16)
    loaded_paths = [dataset.paths[i].relative_to(root).as_posix() for i in indices.tolist()]
    assert loaded_paths == ["cat/1.png", "cat/2.png", "dog/0.png", "dog/2.png"]
    assert targets.tolist() == [0, 0, 1, 1]
    # The worker process marked both files in the flags the main process reads.
    assert [dataset.paths[i].relative_to(root).as_posix() for i in dataset.unreadable.nonzero().flatten()] == [
        "cat/0.png", "dog/1.png"]


def test_dataset_substitute_keeps_batch_size(
        tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 3, "dog": 3})
    dataset = _dataset(root, "skip", substitute=True)

    images, targets, indices = _first_batch_after_break(root, dataset)

    assert images.shape == (6, 3, 16, 16)
    loaded_paths = [dataset.paths[i].relative_to(root).as_posix() for i in indices.tolist()]
    # cat/0.png is replaced by the next readable file, dog/1.png by dog/2.png.
    assert loaded_paths == ["cat/1.png", "cat/1.png", "cat/2.png", "dog/0.png", "dog/2.png", "dog/2.png"]
    assert targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert dataset.unreadable.nonzero().flatten().tolist() == [0, 4]


def test_dataset_skip_all_broken_batch_is_none(tmp_path: Path,
                                               write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 1, "dog": 1})
    dataset = _dataset(root, "skip")
    for path in dataset.paths:
        path.unlink()

    batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_skipping_none))

    assert batches == [None]


def test_dataset_fail_raises_user_error_from_worker(tmp_path: Path,
                                                    write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    dataset = _dataset(root, "fail")
    _break_two_files(root)
    loader = DataLoader(dataset, batch_size=4, num_workers=1, collate_fn=collate_skipping_none)

    with pytest.raises(ImageDecodeError) as caught:
        next(iter(loader))

    assert isinstance(caught.value, HeldoutError)
    assert "cat/0.png: file not found" in str(caught.value)


def test_dataset_cache_serves_deleted_file(tmp_path: Path, write_class_folders: Callable[..., Path]) -> None:
    root = write_class_folders(tmp_path / "data", {"cat": 1, "dog": 1})
    dataset = _dataset(root, "fail", cache=DecodedImageCache(2, 16))
    first = dataset[0]
    dataset.paths[0].unlink()

    second = dataset[0]

    assert first is not None and second is not None
    assert (first[0] == second[0]).all()
