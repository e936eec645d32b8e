"""Measure heldout's training throughput against the compute ceiling and a plain PyTorch loop.

All three runs train MobileNetV3-small on the MNIST demo images (written to data/mnist-demo on first use)
at 64 px, batch 64, with 2 DataLoader workers:

1. ceiling: training steps on random tensors already in memory, in both memory formats and with
   ``OMP_WAIT_POLICY`` unset and ``PASSIVE``, each in its own process. The fastest of the four counts.
2. plain: the loop a careful user would write: a Dataset that decodes each PNG file on every read, the
   same Albumentations pipeline, a DataLoader with 2 workers, default memory format.
3. heldout: ``heldout fit`` with configs/demo.yaml at 64 px, in a child process, for a fixed number of
   epochs. The first epoch (worker start, decoding into the cache) is excluded from the rates.

It also times heldout's training DataLoader alone, without the model, and samples the memory of the
heldout process and its workers. The last output line is ``heldout/ceiling=R1 heldout/plain=R2``, two
ratios of training images per second.

Run from the repository root: python benchmarks/throughput.py [--image-size N] [--ceiling-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
import torch
import yaml
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.models import mobilenet_v3_small

from heldout.data.demo import write_demo_images
from heldout.data.transforms import build_train_transform

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "demo.yaml"
DEMO_DIR = ROOT / "data" / "mnist-demo"
BATCH_SIZE = 64
NUM_WORKERS = 2
NUM_CLASSES = 10
WARMUP_STEPS = 3
CEILING_STEPS = 40  # with 15, one setting varied by up to 23% between runs on a 2-core machine
PLAIN_STEPS = 60
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
HELDOUT_EPOCHS = 3  # epoch 0 is excluded, so epochs 1 and 2 (about 110 steps) are measured


def demo_config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def new_model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Return the demo's model and optimizer: MobileNetV3-small and AdamW at the settings of demo.yaml."""
    model = mobilenet_v3_small(weights=None, num_classes=NUM_CLASSES, dropout=0.2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    return model, optimizer


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               targets: torch.Tensor) -> None:
    loss = F.cross_entropy(model(images), targets, label_smoothing=0.05)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# 1. Compute ceiling -------------------------------------------------------------------------------------

def measure_ceiling(image_size: int, memory_format: torch.memory_format) -> tuple[float, float]:
    """Return (training, inference) images/s on one random batch kept in memory."""
    torch.manual_seed(0)
    model, optimizer = new_model_and_optimizer()
    model = model.to(memory_format=memory_format)
    images = torch.randn(BATCH_SIZE, 3, image_size, image_size).contiguous(memory_format=memory_format)
    targets = torch.randint(0, NUM_CLASSES, (BATCH_SIZE,))

    model.train()
    for _ in range(WARMUP_STEPS):
        train_step(model, optimizer, images, targets)
    start = time.perf_counter()
    for _ in range(CEILING_STEPS):
        train_step(model, optimizer, images, targets)
    train_rate = CEILING_STEPS * BATCH_SIZE / (time.perf_counter() - start)

    model.eval()
    with torch.inference_mode():
        for _ in range(WARMUP_STEPS):
            model(images)
        start = time.perf_counter()
        for _ in range(CEILING_STEPS):
            model(images)
    eval_rate = CEILING_STEPS * BATCH_SIZE / (time.perf_counter() - start)
    return train_rate, eval_rate


# 2. Plain PyTorch loop ----------------------------------------------------------------------------------

class PngFolder(Dataset):
    """``root/<class>/<file>.png`` images, decoded from disk on every read."""

    def __init__(self, root: Path, image_size: int, transform: Any) -> None:
        classes = sorted(path.name for path in root.iterdir() if path.is_dir())
        self.samples = [(path, label) for label, name in enumerate(classes)
                        for path in sorted((root / name).glob("*.png"))]
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = np.asarray(Image.open(path).convert("RGB"))
        image = cv2.resize(image, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
        return self.transform(image=image)["image"], label


def plain_loader(image_size: int) -> DataLoader:
    data = demo_config()["data"]["init_args"]
    transform = build_train_transform(data["augment"], data["mean"], data["std"], seed=0)
    dataset = PngFolder(DEMO_DIR, image_size, transform)
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=NUM_WORKERS, drop_last=True)


def measure_plain(image_size: int) -> float:
    """Return training images/s of the plain loop, over PLAIN_STEPS steps after WARMUP_STEPS."""
    torch.manual_seed(0)
    model, optimizer = new_model_and_optimizer()
    model.train()
    batches = iter(plain_loader(image_size))
    for _ in range(WARMUP_STEPS):
        images, targets = next(batches)
        train_step(model, optimizer, images, targets)
    start = time.perf_counter()
    for _ in range(PLAIN_STEPS):
        images, targets = next(batches)
        train_step(model, optimizer, images, targets)
    return PLAIN_STEPS * BATCH_SIZE / (time.perf_counter() - start)


def measure_loader(loader: DataLoader, epochs: int) -> float:
    """Return images/s of iterating ``loader`` alone for ``epochs`` epochs, after one untimed epoch."""
    for _ in loader:
        pass
    count = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch[0])
    return count / (time.perf_counter() - start)


# 3. heldout fit -----------------------------------------------------------------------------------------

def heldout_datamodule(image_size: int, run_dir: str) -> Any:
    """Return the demo config's data module at ``image_size``, set up for fitting."""
    from heldout.data.datamodule import ImageFolderDataModule

    arguments = dict(demo_config()["data"]["init_args"])
    arguments.update(data_dir=str(DEMO_DIR), image_size=image_size, manifest_dir=run_dir)
    datamodule = ImageFolderDataModule(**arguments)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def run_heldout_child(image_size: int, run_dir: str, result_file: str) -> None:
    """Run ``heldout fit`` on the demo config with a timing callback, and write the rates as JSON."""
    import logging

    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from heldout.cli import HeldoutCLI, RunFolderConfigCallback
    from heldout.data.datamodule import ImageFolderDataModule
    from heldout.model.classifier import MobileNetClassifier

    class SteadyStateTimer(Callback):
        """Sum images and seconds of the training and validation loops from epoch 1 on."""

        def __init__(self) -> None:
            self.seconds = {"train": 0.0, "val": 0.0}
            self.images = {"train": 0, "val": 0}
            self.started = {"train": 0.0, "val": 0.0}
            self.last_batch_end = {"train": 0.0, "val": 0.0}

        def _counted(self, trainer: L.Trainer) -> bool:
            return trainer.current_epoch >= 1 and not trainer.sanity_checking

        def _start(self, trainer: L.Trainer, stage: str) -> None:
            if self._counted(trainer):
                self.started[stage] = time.perf_counter()
                self.last_batch_end[stage] = self.started[stage]

        def _batch(self, trainer: L.Trainer, stage: str, batch: Any) -> None:
            if self._counted(trainer) and batch is not None:
                self.images[stage] += len(batch[0])
                self.last_batch_end[stage] = time.perf_counter()

        def _end(self, trainer: L.Trainer, stage: str) -> None:
            if self._counted(trainer):
                self.seconds[stage] += self.last_batch_end[stage] - self.started[stage]

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._start(trainer, "train")

        def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                               batch: Any, batch_idx: int) -> None:
            self._batch(trainer, "train", batch)

        def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._start(trainer, "val")

        def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                                    batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self._batch(trainer, "val", batch)

        def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self._end(trainer, "val")

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            # Validation runs before this hook, so the training time ends at the last training batch.
            self._end(trainer, "train")

    timer = SteadyStateTimer()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    arguments = ["fit", "-c", str(CONFIG), "--data.init_args.data_dir", str(DEMO_DIR),
                 "--data.init_args.image_size", str(image_size), "--trainer.max_epochs", str(HELDOUT_EPOCHS),
                 "--trainer.default_root_dir", run_dir, "--test_after_fit", "false"]
    # The same classes and settings as heldout.cli, plus the timer.
    HeldoutCLI(MobileNetClassifier, ImageFolderDataModule, subclass_mode_model=True, subclass_mode_data=True,
               save_config_callback=RunFolderConfigCallback, seed_everything_default=42,
               trainer_defaults={"callbacks": [timer]}, args=arguments, auto_configure_optimizers=False)
    rates = {stage: timer.images[stage] / timer.seconds[stage] for stage in ("train", "val")}
    result = {"rates": rates, "images": timer.images, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}
    Path(result_file).write_text(json.dumps(result))


def measure_heldout(image_size: int, work_dir: str) -> dict[str, Any]:
    """Run the heldout child process and return its rates and the peak memory of its process tree."""
    run_dir = os.path.join(work_dir, "heldout-run")
    result_file = os.path.join(work_dir, "heldout.json")
    log_file = os.path.join(work_dir, "heldout.log")
    # The heldout command imports the heldout package before torch, which sets its OpenMP default, so the
    # child does the same before it runs this script.
    start_script = f"import heldout, runpy; runpy.run_path({str(Path(__file__))!r}, run_name='__main__')"
    command = [sys.executable, "-c", start_script, "--image-size", str(image_size), "--child-run-dir", run_dir,
               "--child-result", result_file]
    with open(log_file, "w") as log:
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            peaks = sample_memory(child)
        finally:
            if child.poll() is None:
                child.terminate()
    if child.returncode != 0:
        sys.stdout.write(Path(log_file).read_text()[-4000:])
        raise SystemExit(f"heldout fit failed with exit status {child.returncode}; its output is above.")
    result = json.loads(Path(result_file).read_text())
    result.update(peaks)
    return result


def sample_memory(child: subprocess.Popen) -> dict[str, float]:
    """Sample RSS and PSS of ``child`` and its worker processes every 0.5 s until it exits, in GiB.

    The sum of RSS counts the shared image cache once per process that maps it, so it overstates the
    memory used. The sum of PSS splits shared pages among the processes and is the better total.
    """
    process = psutil.Process(child.pid)
    peaks = {"peak_rss_main_gib": 0.0, "peak_rss_sum_gib": 0.0, "peak_pss_sum_gib": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
                main_rss = process.memory_info().rss
                rss = sum(p.memory_info().rss for p in tree)
                pss = sum(p.memory_full_info().pss for p in tree)
            except psutil.Error:
                # A worker exited between listing and reading; the next sample counts the rest.
                continue
            peaks["peak_rss_main_gib"] = max(peaks["peak_rss_main_gib"], main_rss / 2**30)
            peaks["peak_rss_sum_gib"] = max(peaks["peak_rss_sum_gib"], rss / 2**30)
            peaks["peak_pss_sum_gib"] = max(peaks["peak_pss_sum_gib"], pss / 2**30)
            done.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    child.wait()
    done.set()
    thread.join()
    return peaks


# Main ---------------------------------------------------------------------------------------------------

def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def measure_ceiling_in_child(image_size: int, memory_format: str, wait_policy: str | None) -> tuple[float, float]:
    """Run :func:`measure_ceiling` in a fresh process with ``OMP_WAIT_POLICY`` set or unset.

    libgomp reads the variable when torch loads, so each policy needs its own process.
    """
    environment = dict(os.environ)
    environment.pop("OMP_WAIT_POLICY", None)
    if wait_policy is not None:
        environment["OMP_WAIT_POLICY"] = wait_policy
    command = [sys.executable, __file__, "--image-size", str(image_size), "--child-ceiling", memory_format]
    output = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=True)
    train_rate, eval_rate = json.loads(output.stdout.strip().splitlines()[-1])
    return train_rate, eval_rate


def report_ceiling(image_size: int) -> tuple[float, float]:
    """Measure and print the ceiling in both memory formats and OpenMP wait policies; return the fastest."""
    results = {}
    for memory_format in ("contiguous", "channels_last"):
        for policy in (None, "PASSIVE"):
            rates = measure_ceiling_in_child(image_size, memory_format, policy)
            results[memory_format, policy] = rates
            print(f"ceiling {memory_format:13s} OMP_WAIT_POLICY={policy or 'unset':7s} {image_size} px: "
                  f"train {rates[0]:6.0f} images/s, inference {rates[1]:6.0f} images/s (load {load_average()})")
    for policy in (None, "PASSIVE"):
        ratio = results["channels_last", policy][0] / results["contiguous", policy][0]
        print(f"channels_last/contiguous at {image_size} px, OMP_WAIT_POLICY={policy or 'unset'}: {ratio:.2f}x")
    fastest = max(results, key=lambda key: results[key][0])
    print(f"ceiling: {fastest[0]}, OMP_WAIT_POLICY={fastest[1] or 'unset'}")
    return results[fastest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--ceiling-only", action="store_true", help="measure only the compute ceiling")
    parser.add_argument("--child-ceiling", choices=MEMORY_FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--child-run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    size = arguments.image_size
    if arguments.child_ceiling:
        print(json.dumps(measure_ceiling(size, MEMORY_FORMATS[arguments.child_ceiling])))
        return
    if arguments.child_result:
        run_heldout_child(size, arguments.child_run_dir, arguments.child_result)
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"batch {BATCH_SIZE}, {NUM_WORKERS} workers, load average at start {load_average()}")
    ceiling_train, ceiling_eval = report_ceiling(size)
    if arguments.ceiling_only:
        return
    write_demo_images(DEMO_DIR)

    plain = measure_plain(size)
    print(f"plain loop: train {plain:6.0f} images/s, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')} (load {load_average()})")

    with tempfile.TemporaryDirectory() as work_dir:
        heldout = measure_heldout(size, work_dir)
        rates = heldout["rates"]
        print(f"heldout fit: train {rates['train']:6.0f} images/s, evaluation {rates['val']:6.0f} images/s, "
              f"OMP_WAIT_POLICY={heldout['omp_wait_policy']} "
              f"(epochs 1-{HELDOUT_EPOCHS - 1}, {heldout['images']['train']} training images; "
              f"load {load_average()})")
        print(f"heldout fit peak memory: main process RSS {heldout['peak_rss_main_gib']:.2f} GiB, "
              f"sum of RSS over main and workers {heldout['peak_rss_sum_gib']:.2f} GiB, "
              f"sum of PSS {heldout['peak_pss_sum_gib']:.2f} GiB")

        pipeline = measure_loader(heldout_datamodule(size, work_dir).train_dataloader(), epochs=2)
        plain_pipeline = measure_loader(plain_loader(size), epochs=1)
    print(f"data pipeline alone: heldout {pipeline:6.0f} images/s ({pipeline / ceiling_train:.1f}x the "
          f"ceiling), plain {plain_pipeline:6.0f} images/s (load {load_average()})")
    print(f"inference ceiling {ceiling_eval:6.0f} images/s")
    print(f"heldout/ceiling={rates['train'] / ceiling_train:.2f} heldout/plain={rates['train'] / plain:.2f}")


if __name__ == "__main__":
    main()
