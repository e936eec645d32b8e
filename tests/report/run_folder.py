"""Write synthetic run folders laid out exactly as training and testing write them."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class SplitSpec:
    """How to generate one prediction table.

    ``recalls[k]`` of the ``counts[k]`` images of class k are predicted correctly (rounded to whole images).
    Every image gets ``confidence`` as the probability of its predicted class.
    """

    counts: list[int]
    recalls: list[float]
    confidence: float


def class_names(num_classes: int) -> list[str]:
    return [
        f"class_{chr(ord('a') + index)}" if index < 26 else f"class_{index}" for index in range(num_classes)
    ]


def write_predictions(path: Path, spec: SplitSpec, source: str, seed: int) -> list[str]:
    """Write a prediction table and return its image paths relative to the source folder."""
    rng = np.random.default_rng(seed)
    num_classes = len(spec.counts)
    rows = []
    relative_paths = []
    for target, (count, recall) in enumerate(zip(spec.counts, spec.recalls, strict=True)):
        correct = np.zeros(count, dtype=bool)
        correct[: round(recall * count)] = True
        rng.shuffle(correct)
        for image_index, is_correct in enumerate(correct):
            offset = 0 if is_correct else 1 + int(rng.integers(num_classes - 1))
            prediction = (target + offset) % num_classes
            probabilities = np.full(num_classes, (1 - spec.confidence) / max(1, num_classes - 1))
            probabilities[prediction] = spec.confidence
            relative = f"{class_names(num_classes)[target]}/{path.stem}_{image_index:04d}.png"
            relative_paths.append(relative)
            rows.append(
                [f"{source}:{relative}", target, prediction, *(f"{value:.6f}" for value in probabilities)]
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "target", "prediction", *(f"prob_{index}" for index in range(num_classes))])
        writer.writerows(rows)
    return relative_paths


def accuracy_of(spec: SplitSpec) -> float:
    correct = sum(round(recall * count) for count, recall in zip(spec.counts, spec.recalls, strict=True))
    return correct / sum(spec.counts)


def write_run(
    folder: Path,
    val: SplitSpec,
    test: SplitSpec,
    train_accuracy: float | None = None,
    train_images: int = 5000,
    image_dir: Path | None = None,
    epochs: int = 8,
) -> Path:
    """Write metrics.json, history.csv, predictions, manifest.json, manifest.csv and skipped.csv.

    ``train_accuracy`` defaults to the validation accuracy plus 2 points. With ``image_dir``, the test
    images are written there as small PNGs so the gallery of mistakes can load them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    num_classes = len(val.counts)
    classes = class_names(num_classes)
    val_paths = write_predictions(folder / "predictions" / "val.csv", val, "data_dir", seed=1)
    test_paths = write_predictions(folder / "predictions" / "test.csv", test, "test_dir", seed=2)
    val_accuracy, test_accuracy = accuracy_of(val), accuracy_of(test)
    if train_accuracy is None:
        train_accuracy = min(1.0, val_accuracy + 0.02)

    num_samples = {"train": train_images, "val": sum(val.counts), "test": sum(test.counts)}
    metrics = {
        "best_epoch": epochs - 3,
        "stopped_epoch": epochs - 1,
        "train/acc": train_accuracy,
        "train/loss": 0.4,
        "train/f1": train_accuracy - 0.01,
        "val/acc": val_accuracy,
        "val/loss": 0.5,
        "val/f1": val_accuracy - 0.01,
        "test/acc": test_accuracy,
        "test/loss": 0.55,
        "test/f1": test_accuracy - 0.01,
        "num_samples": num_samples,
        "classes": classes,
        "best_checkpoint": str(folder / "checkpoints" / "best.ckpt"),
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))

    with (folder / "history.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "train/loss", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1"])
        for epoch in range(epochs):
            progress = (epoch + 1) / epochs
            train_value = train_accuracy * progress
            val_value = val_accuracy * min(1.0, progress * 1.2)
            # The first epoch has no validation, as when validation runs every other epoch.
            val_cells = (
                ["", "", ""]
                if epoch == 0
                else [f"{1.5 - val_value:.4f}", f"{val_value:.4f}", f"{val_value:.4f}"]
            )
            writer.writerow(
                [epoch, f"{1.5 - train_value:.4f}", f"{train_value:.4f}", f"{train_value:.4f}", *val_cells]
            )

    data_root = folder.parent / "images" / "train_and_val"
    test_root = image_dir if image_dir is not None else folder.parent / "images" / "missing_test"
    roots = {"data_dir": str(data_root), "val_dir": None, "test_dir": str(test_root)}
    manifest_meta = {"roots": roots, "classes": classes, "settings": {"seed": 0}, "num_samples": num_samples}
    (folder / "manifest.json").write_text(json.dumps(manifest_meta, indent=2))
    with (folder / "manifest.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "class", "split", "group", "source", "size", "mtime_ns"])
        for split, paths, source in (("val", val_paths, "data_dir"), ("test", test_paths, "test_dir")):
            for path in paths:
                writer.writerow([path, path.split("/")[0], split, path, source, 100, 0])
        for index in range(train_images):
            name = classes[index % num_classes]
            writer.writerow([f"{name}/train_{index:05d}.png", name, "train", f"g{index}", "data_dir", 100, 0])
    (folder / "skipped.csv").write_text("source,path,reason\ndata_dir,class_a/broken.jpg,truncated file\n")

    if image_dir is not None:
        rng = np.random.default_rng(3)
        for path in test_paths:
            target = image_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, size=(24, 20, 3), dtype=np.uint8)).save(target)
    return folder


def uniform_spec(
    num_classes: int, per_class: int, recall: float, confidence: float | None = None
) -> SplitSpec:
    """Describe a split with equal class sizes and one recall, calibrated unless ``confidence`` is given."""
    return SplitSpec(
        [per_class] * num_classes, [recall] * num_classes, recall if confidence is None else confidence
    )
