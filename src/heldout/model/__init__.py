"""The MobileNetV3 LightningModule and its building blocks."""

from heldout.model.backbone import build_mobilenet_v3, read_state_dict
from heldout.model.classifier import LOGGED_METRICS, MobileNetClassifier, NonFiniteLossError

__all__ = ["LOGGED_METRICS", "MobileNetClassifier", "NonFiniteLossError", "build_mobilenet_v3", "read_state_dict"]
