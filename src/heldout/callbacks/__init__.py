"""Lightning callbacks that write the run folder's files and keep resumed runs reproducible."""

from heldout.callbacks.epoch_seed import EpochSeed
from heldout.callbacks.interrupt_checkpoint import InterruptCheckpoint
from heldout.callbacks.prediction_writer import PredictionWriter
from heldout.callbacks.run_summary import RunSummary
from heldout.callbacks.unreadable_files import UnreadableFileRecorder

__all__ = ["EpochSeed", "InterruptCheckpoint", "PredictionWriter", "RunSummary", "UnreadableFileRecorder"]
