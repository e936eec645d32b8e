"""Lightning callbacks that write the run folder's files."""

from heldout.callbacks.interrupt_checkpoint import InterruptCheckpoint
from heldout.callbacks.prediction_writer import PredictionWriter
from heldout.callbacks.run_summary import RunSummary

__all__ = ["InterruptCheckpoint", "PredictionWriter", "RunSummary"]
