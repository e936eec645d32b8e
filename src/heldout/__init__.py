"""Train MobileNetV3 image classifiers whose validation accuracy holds on held-out test data."""

import os
import sys

__version__ = "0.1.0"

# libgomp, the OpenMP runtime of PyTorch's Linux wheels, spins while a thread waits for the others. When
# other processes, DataLoader workers included, compete for the cores, the spinning takes the time the
# working threads need: on a loaded 2-core CPU a MobileNetV3-small training step ran 3 to 7 times slower
# than with passive waiting (benchmarks/throughput.py, docs/performance.md). libgomp reads the variable
# when it loads, so it is set only before torch is imported, and a value set by the user is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
