"""Time the README demo run and report its held-out test accuracy.

Runs ``heldout fit -c configs/demo.yaml`` in a fresh run folder (the MNIST digits are written to
``data/mnist-demo`` first if missing) and prints the wall time, the best epoch, train/val/test accuracy and
the val-test gap. Targets: at most 10 minutes on a 2-core CPU, at least 98% test accuracy.

    python benchmarks/demo_run.py [--run-dir runs/demo-benchmark]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo-benchmark", help="run folder, replaced if it exists")
    arguments = parser.parse_args()
    run_dir = ROOT / arguments.run_dir
    shutil.rmtree(run_dir, ignore_errors=True)

    command = [sys.executable, "-m", "heldout", "fit", "-c", "configs/demo.yaml",
               "--trainer.default_root_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"heldout fit failed with exit status {result.returncode}")

    metrics = json.loads((run_dir / "metrics.json").read_text())
    gap = metrics["val/acc"] - metrics["test/acc"]
    print(f"wall time: {seconds:.0f} s (target <= 600 s)")
    print(f"best epoch: {metrics['best_epoch']} of {metrics['stopped_epoch'] + 1} epochs run")
    for split in ("train", "val", "test"):
        print(f"{split} accuracy: {metrics[f'{split}/acc']:.4f} (n={metrics['num_samples'].get(split)})")
    print(f"test/acc={metrics['test/acc']:.4f} val-test gap={gap:+.4f} wall_s={seconds:.0f}")


if __name__ == "__main__":
    main()
