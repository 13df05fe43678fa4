"""One AdamW step: torch's default per-tensor loop against its fused kernel (what the engine's
:func:`negev.engine.recipe.build_optimizer` takes), on parameter sets of negev's models.

Every parameter gets a random gradient once; the timed call is ``optimizer.step()`` alone. The
two optimizers are timed interleaved in one run (median of the repeats), so their ratio holds on
a noisy machine; absolute times do not carry over.

Run:  python -m benchmarks.optimizer_step [--threads 2] [--device cpu] [--out FILE]
Writes benchmarks/results/optimizer_step.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from benchmarks._runs import RESULTS, write_lines
from benchmarks._timing import median_times


def parameter_sets() -> dict[str, nn.Module]:
    """Modules with the parameter shapes of negev's default encoders and heads."""
    from torchvision.models import resnet18

    return {
        "text: hashed n-gram embedding 2^20 x 16 + head": nn.Sequential(
            nn.Embedding(2**20, 16), nn.Linear(16, 2)
        ),
        "image, --set trunk=resnet18: ResNet-18 + head (11.7M, 62 tensors)": nn.Sequential(
            resnet18(weights=None), nn.Linear(1000, 20)
        ),
        "bags on Musk (166 features): MLP 166 -> 64 beside them + head": nn.Sequential(
            nn.Linear(166, 64), nn.Linear(230, 2)
        ),
    }


def measure(device: torch.device, repeats: int) -> list[str]:
    lines = [
        "| parameters | default loop, ms | fused, ms | speed-up |",
        "|---|---|---|---|",
    ]
    for name, module in parameter_sets().items():
        module = module.to(device)
        generator = torch.Generator().manual_seed(0)
        grads = [torch.randn(p.shape, generator=generator).to(device) for p in module.parameters()]
        optimizers = {
            fused: torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=1e-4, fused=fused)
            for fused in (None, True)
        }
        for parameter, grad in zip(module.parameters(), grads, strict=True):
            parameter.grad = grad
        times = median_times(
            {str(fused): optimizer.step for fused, optimizer in optimizers.items()},
            device,
            repeats=repeats,
        )
        slow, fast = times["None"], times["True"]
        lines.append(f"| {name} | {slow * 1e3:.2f} | {fast * 1e3:.2f} | {slow / fast:.1f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", type=Path, default=RESULTS / "optimizer_step.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lines = [
        "# One AdamW step: the default loop against the fused kernel",
        "",
        f"torch {torch.__version__}, {device.type}, {args.threads} thread(s); median of "
        f"{args.repeats} steps each, interleaved. "
        f"Command: `python -m benchmarks.optimizer_step --threads {args.threads} "
        f"--device {args.device}`.",
        "",
        *measure(device, args.repeats),
    ]
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
