"""Training throughput (images/s): ``negev train`` against a plain PyTorch DataLoader loop on the
same model, the same JPEG files and the same precision, measured in one run.

The benchmark writes a Pascal VOC-format folder of photo-sized JPEGs (smooth random colour
fields with noise, 1-3 boxes of VOC classes each) into a temporary directory. Each row trains
``--epochs`` epochs and times the last one (images of that epoch / its seconds; the first
epochs start workers, warm caches and autotune kernels):

* ``engine``: :func:`negev.engine.train` on the VOC folder (the image plugin: ``load_item`` in
  the DataLoader's workers, no augmentation); its training pass is timed, and its whole epoch
  (with the validation on a small split and the checkpoint);
* ``plain``: a loop a user would write: ``Dataset`` (PIL open, RGB, torchvision resize to
  ``S x S``, to tensor, normalise), ``DataLoader(shuffle, num_workers, pin_memory)``, the same
  encoder + WILDCAT head built by the engine, BCE, SGD, autocast and channels_last as the engine.

Run:  python -m benchmarks.throughput                  # CPU table (data-bound input)
      python -m benchmarks.throughput --device cuda    # accelerator table (ResNet-50, 448 px, bf16)
Writes benchmarks/results/throughput.md (throughput_cuda.md for a GPU).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from benchmarks._runs import RESULTS, write_lines
from benchmarks._timing import sync
from negev.engine import resolve_config, train, trainer
from negev.engine.model import build_model
from negev.engine.precision import autocast
from negev_image.images import IMAGENET_MEAN, IMAGENET_STD

VOC = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow")

PRESETS = {
    # data-bound on a CPU: large JPEGs (camera-sized), a small trunk at a small input size
    "cpu": {
        "images": 192, "photo": (2400, 1800), "trunk": "small", "image_size": 160,
        "net": {"width": 8, "spatial": 2},
        "batch_size": 16, "precision": "fp32", "workers": [0, 2], "epochs": 2, "threads": 1,
    },
    # the accelerator setting: VOC-sized photos, ResNet-50 (random init), 448 px, bf16
    "cuda": {
        "images": 2048, "photo": (500, 375), "trunk": "resnet50", "image_size": 448, "net": {},
        "batch_size": 32, "precision": "bf16", "workers": [12], "epochs": 2, "threads": None,
    },
}  # fmt: skip


def write_voc(root: Path, count: int, photo: tuple[int, int], seed: int = 0) -> None:
    """``count`` JPEGs of ``photo`` (width, height) px with annotations; 32 images each for
    validation and test, the rest for training."""
    rng = np.random.default_rng(seed)
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    width, height = photo
    ids = [f"{i:06d}" for i in range(count)]
    for image_id in ids:
        coarse = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
        field = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        noisy = np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.jpg", quality=90
        )
        objects = []
        for _ in range(int(rng.integers(1, 4))):
            x0, y0 = int(rng.integers(1, width // 2)), int(rng.integers(1, height // 2))
            x1, y1 = int(rng.integers(x0 + 8, width)), int(rng.integers(y0 + 8, height))
            objects.append(
                f"<object><name>{VOC[int(rng.integers(len(VOC)))]}</name><difficult>0</difficult>"
                f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
                "</bndbox></object>"
            )
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>{width}</width><height>{height}</height></size>"
            + "".join(objects)
            + "</annotation>"
        )
    main = root / "ImageSets" / "Main"
    (main / "val.txt").write_text("\n".join(ids[:32]) + "\n")
    (main / "test.txt").write_text("\n".join(ids[32:64]) + "\n")
    (main / "train.txt").write_text("\n".join(ids[64:]) + "\n")


class _TimedConsole(Console):
    """Records when the engine prints each epoch's line."""

    def __init__(self) -> None:
        super().__init__(file=io.StringIO())
        self.stamps: list[float] = []

    def print(self, *objects, **kwargs) -> None:
        if objects and str(objects[0]).startswith("epoch "):
            self.stamps.append(time.perf_counter())
        super().print(*objects, **kwargs)


def engine_rate(
    root: Path, out: Path, setting: dict, workers: int, device: str
) -> tuple[float, float]:
    """Images/s of the engine's last epoch: its training pass, and the whole epoch (with the
    validation pass and the checkpoint)."""
    options = {
        "modality": "image", "data": str(root), "out": str(out), "device": device,
        "epochs": setting["epochs"], "batch_size": setting["batch_size"], "optimizer": "sgd",
        "lr": 0.01, "precision": setting["precision"], "workers": workers,
        "plugin": {"trunk": setting["trunk"], "image_size": setting["image_size"],
                   "augment": False, **setting["net"]},
    }  # fmt: skip
    plugin, config = resolve_config({}, options)
    console = _TimedConsole()
    passes: list[float] = []
    original = trainer._train_epoch

    def timed(*args, **kwargs):
        sync(torch.device(device))
        start = time.perf_counter()
        loss = original(*args, **kwargs)
        sync(torch.device(device))
        passes.append(time.perf_counter() - start)
        return loss

    trainer._train_epoch = timed
    try:
        train(plugin, config, console=console, overwrite=True, evaluate_test=False)
    finally:
        trainer._train_epoch = original
    train_items = setting["images"] - 64
    return train_items / passes[-1], train_items / (console.stamps[-1] - console.stamps[-2])


class _PlainImages(Dataset):
    def __init__(self, root: Path, size: int):
        ids = (root / "ImageSets" / "Main" / "train.txt").read_text().split()
        self.files = [root / "JPEGImages" / f"{i}.jpg" for i in ids]
        self.labels = [random.Random(i).randrange(len(VOC)) for i in range(len(ids))]
        self.size = size
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from torchvision.transforms.v2 import functional as TF

        with Image.open(self.files[index]) as image:
            rgb = TF.resize(image.convert("RGB"), [self.size, self.size], antialias=True)
        x = TF.to_dtype(TF.pil_to_tensor(rgb), torch.float32, scale=True)
        target = torch.zeros(20)
        target[self.labels[index]] = 1
        return (x - self.mean) / self.std, target


def plain_rate(root: Path, setting: dict, workers: int, device_name: str) -> float:
    """Images/s of a plain DataLoader loop's last epoch, same model as the engine's."""
    device = torch.device(device_name)
    plugin, config = resolve_config(
        {},
        {"modality": "image", "plugin": {"trunk": setting["trunk"], **setting["net"]}},
    )
    torch.manual_seed(0)
    model = build_model(plugin, config, 20).to(device)
    channels_last = device.type != "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(
        _PlainImages(root, setting["image_size"]),
        batch_size=setting["batch_size"],
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    model.train()
    for _ in range(setting["epochs"]):
        sync(device)
        start, count = time.perf_counter(), 0
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, setting["precision"]):
                scores = model({"images": images}).scores
            loss = F.binary_cross_entropy_with_logits(scores.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            count += len(images)
        sync(device)
        seconds = time.perf_counter() - start
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, help="JPEGs written (64 go to val and test)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts to compare")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--epochs", type=int, help="epochs per row (the last one is timed)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    setting = dict(PRESETS["cpu" if device.type == "cpu" else "cuda"])
    for key in ("images", "workers", "precision", "epochs"):
        if getattr(args, key) is not None:
            setting[key] = getattr(args, key)
    if setting["threads"]:
        torch.set_num_threads(setting["threads"])
    name = "throughput" if device.type == "cpu" else f"throughput_{device.type}"
    out = args.out or RESULTS / f"{name}.md"

    rows = []
    load = os.getloadavg()[0]  # other work on the machine makes CPU timings unreliable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "VOC"
        start = time.perf_counter()
        write_voc(root, setting["images"], setting["photo"])
        print(f"wrote {setting['images']} JPEGs in {time.perf_counter() - start:.0f} s", flush=True)
        workers, run = setting["workers"], Path(tmp) / "run"
        if device.type != "cpu":  # today's configuration, for reference: fp32, in-process
            today = {**setting, "precision": "fp32"}
            rows.append(("engine", "fp32", 0, *engine_rate(root, run, today, 0, args.device)))
            print(rows[-1], flush=True)
        for count in workers:
            for path in ("engine", "plain"):
                if path == "engine":
                    rates = engine_rate(root, run, setting, count, args.device)
                else:
                    rates = (plain_rate(root, setting, count, args.device), None)
                rows.append((path, setting["precision"], count, *rates))
                print(rows[-1], flush=True)

    plain = {(p, w): r for path, p, w, r, _ in rows if path == "plain"}
    engine = {(p, w): r for path, p, w, r, _ in rows if path == "engine"}
    lines = [
        f"# Training throughput, {args.device}",
        "",
        f"`python -m benchmarks.throughput --device {args.device}`; torch {torch.__version__}, "
        f"{platform.machine()}, {torch.get_num_threads()} intra-op threads"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
        + ".",
        f"{setting['images'] - 64} training JPEGs of {setting['photo'][0]} x "
        f"{setting['photo'][1]} px, trunk `{setting['trunk']}`, {setting['image_size']} px input, "
        f"WILDCAT head (M=4), batch {setting['batch_size']}, SGD; images/s of epoch "
        f"{setting['epochs']}: its training pass, and for the engine the whole epoch (with its "
        "validation on 32 images and its checkpoint). Load average at the start: "
        f"{load:.1f}.",
        "",
        "| path | precision | workers | images/s, training pass | images/s, whole epoch "
        "| engine / plain |",
        "|---|---|---|---|---|---|",
    ]
    for path, precision, count, rate, epoch in rows:
        ratio = ""
        if path == "engine" and (precision, count) in plain:
            ratio = f"{rate / plain[(precision, count)]:.2f}"
        whole = f"{epoch:.1f}" if epoch else ""
        lines.append(f"| {path} | {precision} | {count} | {rate:.1f} | {whole} | {ratio} |")
    zero = engine.get((setting["precision"], 0))
    for (precision, count), rate in engine.items():
        if count > 0 and zero and precision == setting["precision"]:
            lines += ["", f"Engine with {count} workers / with 0: {rate / zero:.2f}x."]
    write_lines(out, lines)


if __name__ == "__main__":
    main()
