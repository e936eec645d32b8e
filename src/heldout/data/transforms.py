"""Albumentations pipelines: augmentation for training, deterministic resize and normalization for evaluation."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import pydantic
from albumentations.pytorch import ToTensorV2

from heldout.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Flip, rotation, zoom/scale with a small shift, and brightness/contrast jitter.
DEFAULT_AUGMENT: tuple[dict[str, Any], ...] = (
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "Affine", "rotate": [-15, 15], "scale": [0.85, 1.15], "translate_percent": [-0.08, 0.08], "p": 0.8},
    {"name": "RandomBrightnessContrast", "brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.5},
)


def resize_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Resize to ``image_size`` x ``image_size``, with area interpolation when shrinking."""
    height, width = image.shape[:2]
    if (height, width) == (image_size, image_size):
        return image
    shrinking = height * width > image_size * image_size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (image_size, image_size), interpolation=interpolation)


def _known_transforms() -> dict[str, type]:
    return {name: value for name, value in vars(A).items()
            if inspect.isclass(value) and issubclass(value, A.BasicTransform)}


def _build_one(spec: Mapping[str, Any], position: int) -> A.BasicTransform:
    key = f"data.augment[{position}]"
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(f"Expected {key} to be a mapping with a 'name' key such as "
                          f"{{name: Affine, rotate: [-15, 15]}}, but got {spec!r}.")
    name = spec["name"]
    arguments = {k: v for k, v in spec.items() if k != "name"}
    transforms = _known_transforms()
    if name not in transforms:
        close = difflib.get_close_matches(str(name), transforms, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"{key}: Albumentations {A.__version__} has no transform named {name!r}.{hint}")

    transform_class = transforms[name]
    accepted = set(inspect.signature(transform_class.__init__).parameters) - {"self", "args", "kwargs"}
    # Albumentations 2.x warns about unknown arguments (for example names from 1.x) and then ignores them,
    # so a typo would silently change the augmentation. Reject them here instead.
    unknown = sorted(set(arguments) - accepted)
    if unknown:
        raise ConfigError(f"{key}: {name} does not accept the argument(s) {', '.join(unknown)} in "
                          f"Albumentations {A.__version__}; accepted: {', '.join(sorted(accepted))}.")
    try:
        return transform_class(**arguments)
    except (pydantic.ValidationError, ValueError, TypeError) as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"{key}: invalid arguments for {name}: {detail}") from None


def build_augmentation(specs: Sequence[Mapping[str, Any]] | None) -> list[A.BasicTransform]:
    """Build augmentation transforms from config entries such as ``{"name": "Affine", "rotate": [-15, 15]}``.

    ``None`` gives :data:`DEFAULT_AUGMENT`; an empty list gives no augmentation.

    Raises:
        ConfigError: an unknown transform name, an argument the transform does not accept, or an invalid
            argument value.
    """
    entries = DEFAULT_AUGMENT if specs is None else specs
    return [_build_one(spec, position) for position, spec in enumerate(entries)]


def check_augmentation(specs: Sequence[Mapping[str, Any]] | None, image_size: int) -> None:
    """Apply each augmentation transform once, with probability 1, to a random image of the training size.

    A transform that fails on such an image (a crop larger than the image) or changes its size would
    otherwise stop the run at the first training batch.

    Raises:
        ConfigError: a transform fails or changes the image size, named by its ``data.augment`` position.
    """
    image = np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
    entries = DEFAULT_AUGMENT if specs is None else specs
    for position, spec in enumerate(entries):
        transform = _build_one(spec, position)
        transform.p = 1.0
        name = type(transform).__name__
        try:
            output = A.Compose([transform], seed=0)(image=image.copy())["image"]
        except Exception as error:  # Albumentations raises its own classes, such as CropSizeError
            detail = " ".join(str(error).split()) or type(error).__name__
            raise ConfigError(f"data.augment[{position}]: {name} failed on a {image_size}x{image_size} image "
                              f"(data.image_size): {detail}. Fit its arguments to data.image_size.") from None
        if output.shape != image.shape:
            height, width = output.shape[:2]
            raise ConfigError(f"data.augment[{position}]: {name} turns a {image_size}x{image_size} image into "
                              f"{height}x{width}, but augmentation must keep data.image_size. Images are resized "
                              "before augmentation; for random crops use RandomResizedCrop with size "
                              f"[{image_size}, {image_size}].")


def build_train_transform(augment: Sequence[Mapping[str, Any]] | None, mean: Sequence[float],
                          std: Sequence[float], seed: int | None = None) -> A.Compose:
    """Return the training pipeline: augmentation, normalization, conversion to a CHW float tensor.

    Images reach it already resized, so augmentation works at the training resolution.
    """
    return A.Compose([*build_augmentation(augment), A.Normalize(mean=mean, std=std), ToTensorV2()], seed=seed)


def build_eval_transform(mean: Sequence[float], std: Sequence[float]) -> A.Compose:
    """Return the evaluation pipeline: normalization and conversion only, so it is deterministic."""
    return A.Compose([A.Normalize(mean=mean, std=std), ToTensorV2()])
