"""Fully connected CRF refinement of weakly supervised segmentations (Krähenbühl and Koltun,
NeurIPS 2011), as WILDCAT (Durand et al., CVPR 2017, Sec. 4.3) refines its class maps.

Written in torch because no maintained dense-CRF package installs as a wheel here (pydensecrf /
pydensecrf2 are source-only C++ builds). The energy over labels x (background + the classes
predicted present) is

    E(x) = sum_i U_i(x_i) + sum_{i<j} [x_i != x_j] (w1 k1(i, j) + w2 k2(i, j)),
    k1 = exp(-|p_i - p_j|^2 / 2 theta_a^2 - |I_i - I_j|^2 / 2 theta_b^2)   (appearance)
    k2 = exp(-|p_i - p_j|^2 / 2 theta_g^2)                                 (smoothness)

with p pixel positions and I RGB values (0-255), Potts compatibility, and each kernel matrix
symmetrically normalised (D^-1/2 K D^-1/2, the default normalisation of Krähenbühl's code). It is
minimised by mean-field updates Q <- softmax(-U - sum_m w_m (sum_l' Q_l' - Q_l) * K_m), computed
exactly (dense N x N kernels, no permutohedral approximation); images of more than
``max_pixels`` pixels are solved on a grid shrunk to that many, and the marginals upsampled.

Defaults are DeepLab's for VOC (Chen et al., ICLR 2015: w1 4, theta_a 121, theta_b 5, w2 3,
theta_g 3, 10 iterations), with the spatial thetas given for a 500 px image side and scaled to
the image, so that a kernel covers the same share of every image. The unary comes from the class
maps by the rule of :class:`~negev_image.localization.SegmentationIoU`: each present class's map
divided by its maximum (clamped at 0), background at the threshold, turned into probabilities by a
softmax at temperature ``temperature``. At 0.05 a pixel at either extreme (margin 0.5 from the
threshold: 10 nats) outweighs the largest pairwise cost (w1 + w2 = 7), so the CRF relabels only
the uncertain pixels, those whose normalised map is within 0.35 of the threshold. Without the
pairwise terms the labels are exactly SegmentationIoU's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DenseCRF", "dense_crf", "map_unary"]


@dataclass(frozen=True)
class DenseCRF:
    """The CRF's parameters (spatial thetas for a ``reference_side`` px image)."""

    appearance_weight: float = 4.0
    theta_alpha: float = 121.0
    theta_beta: float = 5.0
    smoothness_weight: float = 3.0
    theta_gamma: float = 3.0
    iterations: int = 10
    reference_side: float = 500.0
    max_pixels: int = 1024
    temperature: float = 0.05


def map_unary(maps: Tensor, present: Tensor, threshold: float, temperature: float) -> Tensor:
    """(C, H, W) class maps and the (K,) indices of the classes present -> (K + 1, H, W)
    unary energies ``-log softmax([threshold, r_1, ..., r_K] / temperature)`` with
    ``r_k = clamp(map_k, 0) / max``; label 0 is background."""
    chosen = maps[present].float().clamp(min=0)
    peak = chosen.flatten(1).amax(1).clamp(min=1e-12)
    relative = chosen / peak.view(-1, 1, 1)
    logits = torch.cat([torch.full_like(relative[:1], threshold), relative]) / temperature
    return -torch.log_softmax(logits, dim=0)


def _kernel(features: Tensor) -> Tensor:
    """(N, d) scaled features -> (N, N) Gaussian kernel without its diagonal, symmetrically
    normalised."""
    squared = features.square().sum(1)
    distance = (squared[:, None] + squared[None, :] - 2 * features @ features.T).clamp_(min=0)
    kernel = torch.exp_(distance.mul_(-0.5))
    kernel.fill_diagonal_(0)
    norm = kernel.sum(1).clamp(min=1e-12).rsqrt()
    return norm[:, None] * kernel * norm[None, :]


def dense_crf(image: Tensor, unary: Tensor, params: DenseCRF | None = None) -> Tensor:
    """Mean-field inference of the fully connected CRF.

    Args:
        image: (3, H, W) RGB, uint8 or float in 0-255. unary: (L, H, W) float energies (-log
            probabilities). params: :class:`DenseCRF`.

    Returns:
        (L, H, W) float marginals Q (softmax over the labels); argmax(0) gives the labels.
    """
    params = params or DenseCRF()
    if image.shape[-2:] != unary.shape[-2:] or image.shape[0] != 3:
        raise ValueError(f"image {tuple(image.shape)} must be (3, H, W) of unary's H, W "
                         f"{tuple(unary.shape[-2:])}")  # fmt: skip
    height, width = unary.shape[-2:]
    scale = min(1.0, (params.max_pixels / (height * width)) ** 0.5)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    rgb, energy = image.float(), unary.float()
    if (h, w) != (height, width):
        rgb = F.interpolate(rgb[None], size=(h, w), mode="area")[0]
        energy = F.interpolate(energy[None], size=(h, w), mode="area")[0]
    side = min(height, width) / params.reference_side  # thetas in this image's pixels
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")  # fmt: skip
    positions = torch.stack([ys, xs], -1).reshape(-1, 2).to(energy.device) / scale
    colours = rgb.reshape(3, -1).T
    k_app = _kernel(torch.cat([positions / (params.theta_alpha * side),
                               colours / params.theta_beta], 1))  # fmt: skip
    k_smooth = _kernel(positions / max(params.theta_gamma * side, 1e-6))
    flat = energy.reshape(energy.shape[0], -1).T  # (N, L)
    q = torch.softmax(-flat, dim=1)
    for _ in range(params.iterations):
        message = params.appearance_weight * (k_app @ q)
        message = message + params.smoothness_weight * (k_smooth @ q)
        pairwise = message.sum(1, keepdim=True) - message  # Potts: cost of differing labels
        q = torch.softmax(-flat - pairwise, dim=1)
    q = q.T.reshape(-1, h, w)
    if (h, w) != (height, width):
        q = F.interpolate(q[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return q
