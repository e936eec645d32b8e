"""Train MobileNetV3 image classifiers whose validation accuracy holds on held-out test data."""

__version__ = "0.1.0"
