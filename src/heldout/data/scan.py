"""Scan an image folder laid out as ``root/<class>/<image>``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from heldout.errors import DataError

log = logging.getLogger(__name__)
# Warnings already logged by this process. A run scans its folders several times (classes, split, the
# evaluation after fit), and each finding is reported once.
_warned: set[str] = set()

# Folder names that mean a split, not a class: a data folder whose classes are all such names is a
# folder of splits given one level too high.
SPLIT_FOLDER_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Sample:
    """One image file: its path relative to the scanned root and its class name."""

    path: str
    label: str


@dataclass
class FolderScan:
    """The result of scanning one image folder.

    Attributes:
        root: the scanned folder, resolved to an absolute path.
        classes: class names sorted, so that a class index is its position here.
        samples: image files in a stable order (sorted by relative path).
        empty_classes: class folders left out because they hold no image file.
        ignored: files inside class folders that are not images, relative to ``root``.
    """

    root: Path
    classes: list[str]
    samples: list[Sample]
    empty_classes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def class_index(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.classes)}

    def targets(self) -> list[int]:
        index = self.class_index()
        return [index[sample.label] for sample in self.samples]


def _split_folder_keys(root: Path, folders: list[str]) -> str:
    """Return the data options that take split folders such as ``train`` and ``val``, for an error message."""
    keys = {"train": "data_dir", "training": "data_dir", "val": "val_dir", "valid": "val_dir",
            "validation": "val_dir", "test": "test_dir", "testing": "test_dir"}
    order = ("data_dir", "val_dir", "test_dir")
    options = [f"--data.{keys[name.lower()]} {root / name}"
             for name in sorted(folders, key=lambda name: order.index(keys[name.lower()]))]
    if not any(keys[name.lower()] == "data_dir" for name in folders):
        options.insert(0, "--data.data_dir with a folder of training images")
    return ", ".join(options)


def _warn_once(message: str, *arguments: object) -> None:
    text = message % arguments
    if text not in _warned:
        _warned.add(text)
        log.warning(text)


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def is_image_file(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _walk_images(root: Path, class_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Return image paths, ignored non-image paths and passed-over entries below ``class_dir``.

    Paths are relative to ``root``. Subfolders are included recursively, because many datasets group one
    class's images by source (camera, session) in subfolders. Hidden files and folders are skipped.
    Symbolic links are followed, except those that lead to a folder already walked: a link back to a
    parent folder would repeat its images without end. Names that are not valid UTF-8 are passed over too, because the
    manifest and prediction files could not record them.
    """
    images: list[str] = []
    ignored: list[str] = []
    passed_over: list[str] = []
    walked: set[str] = set()
    for current, folders, files in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(current)
        if real in walked:
            folders[:] = []
            passed_over.append(f"{Path(current).relative_to(root).as_posix()} (a link to a folder already "
                               "scanned, such as a loop)")
            continue
        walked.add(real)
        folders[:] = sorted(name for name in folders if not is_hidden(name))
        for name in sorted(files):
            if is_hidden(name):
                continue
            relative = Path(current, name).relative_to(root).as_posix()
            if not _is_utf8(relative):
                passed_over.append(f"{os.fsencode(relative)!r} (a name that is not "
                                   "valid UTF-8; rename the file)")
                continue
            if not os.path.isfile(os.path.join(current, name)):
                # A read from a named pipe or device can block forever, and a dangling link has nothing to read.
                passed_over.append(f"{relative} (not a regular file)")
                continue
            (images if is_image_file(name) else ignored).append(relative)
    return images, ignored, passed_over


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _warn_passed_over(root: Path, passed_over: list[str]) -> None:
    if passed_over:
        listed = "; ".join(passed_over[:5]) + (f"; and {len(passed_over) - 5} more" if len(passed_over) > 5 else "")
        _warn_once("Passed over %d entries in %s: %s", len(passed_over), root, listed)


def scan_image_folder(root: str | os.PathLike[str], *, min_classes: int = 2) -> FolderScan:
    """Scan ``root/<class>/<image>`` and return the samples with their class names.

    Class names are the first-level subfolder names, sorted. Extensions are matched case-insensitively,
    hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) are ignored, and a class folder
    without images is left out with a warning.

    Raises:
        DataError: the folder does not exist, is not a folder, or has fewer than ``min_classes``
            classes with images.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise DataError(f"Data folder not found: {root_path}. Pass an existing folder laid out as "
                        "<folder>/<class>/<image> (for the demo: heldout-demo-data writes one).")
    if not root_path.is_dir():
        raise DataError(f"Data folder {root_path} is a file, expected a folder laid out as "
                        "<folder>/<class>/<image>.")
    root_path = root_path.resolve()

    folders = sorted(p for p in root_path.iterdir() if p.is_dir() and not is_hidden(p.name))
    class_dirs = [folder for folder in folders if _is_utf8(folder.name)]
    passed_over = [f"{os.fsencode(folder.name)!r} (a class folder name that is not valid UTF-8; rename it)"
                   for folder in folders if not _is_utf8(folder.name)]
    if not class_dirs:
        loose = [p.name for p in root_path.iterdir() if p.is_file() and is_image_file(p.name)]
        hint = f" It holds {len(loose)} image files directly; move them into one subfolder per class." if loose else ""
        raise DataError(f"Data folder {root_path} has no class subfolders, expected "
                        f"<folder>/<class>/<image>.{hint}")

    loose = sorted(p.name for p in root_path.iterdir() if p.is_file() and is_image_file(p.name))
    if loose:
        _warn_once("Left out %d image file(s) directly in %s, outside any class folder, for example %s; move "
                    "them into the subfolder of their class to use them.", len(loose), root_path, loose[0])

    samples: list[Sample] = []
    classes: list[str] = []
    empty: list[str] = []
    ignored: list[str] = []
    for class_dir in class_dirs:
        images, skipped, passed = _walk_images(root_path, class_dir)
        ignored.extend(skipped)
        passed_over.extend(passed)
        if not images:
            empty.append(class_dir.name)
            continue
        classes.append(class_dir.name)
        samples.extend(Sample(path, class_dir.name) for path in images)

    _warn_passed_over(root_path, passed_over)
    if empty:
        _warn_once("Left out %d class folder(s) without image files: %s", len(empty), ", ".join(empty))
    if ignored:
        _warn_once("Ignored %d non-image file(s) in %s, for example %s (image extensions: %s)",
                    len(ignored), root_path, ignored[0], ", ".join(sorted(IMAGE_EXTENSIONS)))
    if classes and {name.lower() for name in classes} <= SPLIT_FOLDER_NAMES:
        raise DataError(f"Data folder {root_path} has the class folders {', '.join(classes)}, which look like "
                        f"split folders; expected <folder>/<class>/<image>. Pass {_split_folder_keys(root_path, classes)}.")
    if len(classes) < min_classes:
        found = ", ".join(f"'{name}'" for name in classes) or "none"
        raise DataError(f"Data folder {root_path} has {len(classes)} class(es) with images ({found}), "
                        f"expected at least {min_classes}. A classifier needs one subfolder of images per "
                        "class; add the missing classes.")

    samples.sort(key=lambda sample: sample.path)
    return FolderScan(root_path, classes, samples, empty, ignored)


def list_images(root: str | os.PathLike[str], key: str) -> tuple[Path, list[str]]:
    """Return ``root`` resolved and the image files anywhere below it, relative to it and sorted.

    For folders without classes, such as new images to predict. ``key`` is the config key that named the
    folder, for the error message.

    Raises:
        DataError: the folder is missing, is a file, or contains no image file.
    """
    if not str(root).strip():
        raise DataError(f"{key} is empty; expected the path of a folder of images.")
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        state = "is a file" if root_path.exists() else "was not found"
        raise DataError(f"{key} {root_path} {state}; expected a folder of images (subfolders are included).")
    root_path = root_path.resolve()
    images, ignored, passed_over = _walk_images(root_path, root_path)
    _warn_passed_over(root_path, passed_over)
    if ignored:
        _warn_once("Ignored %d non-image file(s) in %s, for example %s (image extensions: %s)",
                    len(ignored), root_path, ignored[0], ", ".join(sorted(IMAGE_EXTENSIONS)))
    if not images:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"{key} {root_path} contains no image files (extensions: {extensions}); add images or "
                        f"point {key} at another folder.")
    return root_path, sorted(images)
