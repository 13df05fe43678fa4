"""Prediction throughput on the image demo: the engine vs the exported ONNX graph, on the CPU.

One command: ``python -m benchmarks.predict`` writes ``benchmarks/results/predict_cpu.md``.
The model is the image plugin's default (small CNN, WILDCAT, 4 maps per class) on the digits
demo's 64 px canvases, untrained (the speed does not depend on the weights). Rows, timed
interleaved in one run (median of the repeats, :func:`benchmarks._timing.median_times`), 2 threads
each:

- engine ``predict``: :meth:`negev.inference.Predictor.predictions` end to end (``load_item``,
  ``collate``, the model, scores and maps to the CPU), ``--workers 0``;
- PyTorch model: the model alone on the collated batches (``torch.no_grad``);
- ONNX Runtime: the graph of ``negev export --format onnx`` on the same batches.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnxruntime
import torch

from benchmarks._runs import RESULTS, write_lines
from benchmarks._timing import median_times
from negev.inference import load
from negev.inference.export import export, sample_inputs
from negev.testing.runs import untrained_run

THREADS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_cpu.md")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    options = {"plugin": {"demo_train": 32, "demo_val": 16, "demo_test": args.items}}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        examples = untrained_run(run, "image", options)[-args.items :]
        predictor = load(run)
        size = args.batch_size
        batches = [
            sample_inputs(predictor, examples[i : i + size]) for i in range(0, len(examples), size)
        ]
        onnx = export(predictor, Path(tmp) / "model.onnx", "onnx", examples[:4])
        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = THREADS
        settings.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(onnx), settings, providers=["CPUExecutionProvider"]
        )
        arrays = [{"images": b["images"].numpy()} for b in batches]

        def engine() -> None:
            for _ in predictor.predictions(examples, batch_size=size):
                pass

        @torch.no_grad()
        def model() -> None:
            for batch in batches:
                predictor.model(batch)

        def runtime() -> None:
            for feed in arrays:
                session.run(["scores", "maps"], feed)

        seconds = median_times(
            {"engine": engine, "model": model, "onnx": runtime},
            torch.device("cpu"),
            repeats=args.repeats,
            warmup=1,
        )
    rate = {name: len(examples) / s for name, s in seconds.items()}
    side = batches[0]["images"].shape[-1]
    lines = [
        f"# Prediction throughput, image demo, CPU ({THREADS} threads)",
        "",
        f"`python -m benchmarks.predict`: {len(examples)} images of {side} px, batch {size}, the "
        f"image plugin's default model (small CNN, WILDCAT); torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; median of {args.repeats} interleaved repeats.",
        "",
        "| path | items/s | vs PyTorch model |",
        "|---|---|---|",
        f"| engine `predict` (load_item + collate + model + maps to CPU) | {rate['engine']:.0f} | "
        f"{rate['engine'] / rate['model']:.2f}x |",
        f"| PyTorch model on collated batches | {rate['model']:.0f} | 1.00x |",
        f"| ONNX Runtime on the exported graph, same batches | {rate['onnx']:.0f} | "
        f"{rate['onnx'] / rate['model']:.2f}x |",
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
