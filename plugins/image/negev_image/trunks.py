"""Region encoders for images: a convolutional trunk whose last feature map's cells are regions.

* :class:`SmallCNN`: six convolutions, stride 4, sized for CPU work (the built-in demo).
* :func:`resnet_trunk`: a torchvision ResNet (18/34/50/101/152) without its global pool and fc,
  stride 32, optionally initialised from a local file of torchvision weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from negev.plugins import RegionEncoder

__all__ = ["RESNETS", "ImageEncoder", "SmallCNN", "load_trunk_weights", "resnet_trunk"]

RESNETS = {
    18: (torchvision.models.resnet18, 512),
    34: (torchvision.models.resnet34, 512),
    50: (torchvision.models.resnet50, 2048),
    101: (torchvision.models.resnet101, 2048),
    152: (torchvision.models.resnet152, 2048),
}


class SmallCNN(nn.Sequential):
    """conv-BN-ReLU x 6 (the 2nd and 4th with stride 2): (B, 3, H, W) -> (B, 4*width, H/4, W/4).

    The first ``spatial`` convolutions are 3x3 and the rest 1x1, which sets the receptive field
    of a cell: 13, 21 or 29 px with 4, 5 or 6. The default, 21 px, sees most of a demo digit
    but not all of the larger ones, so that evidence has to be gathered over several regions.
    """

    def __init__(self, width: int = 32, spatial: int = 5):
        if not 2 <= spatial <= 6:
            raise ValueError(
                f"spatial (3x3 layers of the small CNN) must be in 2..6, got {spatial}"
            )
        channels = [3, width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        strides = [1, 2, 1, 2, 1, 1]
        layers: list[nn.Module] = []
        for i, (c_in, c_out, stride) in enumerate(
            zip(channels[:-1], channels[1:], strides, strict=True)
        ):
            kernel = 3 if i < spatial else 1
            layers += [
                nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)
        self.out_channels = channels[-1]


def resnet_trunk(depth: int) -> tuple[nn.Sequential, int]:
    """The convolutional part of a torchvision ResNet (stem + layer1..4), randomly initialised.

    Returns:
        (trunk, D): ``trunk`` maps (B, 3, H, W) to (B, D, H/32, W/32).
    """
    if depth not in RESNETS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNETS)}, got {depth!r}")
    build, channels = RESNETS[depth]
    net = build(weights=None)
    trunk = nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )
    return trunk, channels


# torchvision's names of the trunk's children with weights -> their index in the trunk
_TRUNK_INDEX = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}
_TRUNK_NAME = {str(i): name for name, i in _TRUNK_INDEX.items()}


def load_trunk_weights(trunk: nn.Sequential, path: str | Path) -> None:
    """Load a torchvision ResNet state dict from a local file into a :func:`resnet_trunk`.

    Accepts ``.safetensors`` or a ``torch.save`` file (read with ``weights_only=True``), a bare
    state dict or one under ``state_dict`` / ``model``, keys with or without a ``module.`` prefix;
    the classifier (``fc.*``) is dropped.

    Raises:
        ValueError: naming the file and the first problems (missing file, missing keys, keys of
            another architecture, shape mismatches, e.g. ResNet-50 weights for a ResNet-18).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported with the file name
        raise ValueError(f"weights file {path} cannot be read: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("fc."):
            continue
        head, _, rest = key.partition(".")
        renamed[f"{_TRUNK_INDEX[head]}.{rest}" if head in _TRUNK_INDEX else key] = value
    own = trunk.state_dict()
    problems = []
    missing = [k for k in own if k not in renamed]
    unexpected = [k for k in renamed if k not in own]
    if missing:
        problems.append(f"{len(missing)} missing keys ({', '.join(_named(missing[:3]))}...)")
    if unexpected:
        problems.append(f"{len(unexpected)} unknown keys ({', '.join(_named(unexpected[:3]))}...)")
    shapes = [
        f"{_named([k])[0]}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in renamed.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:3])})")
    if problems:
        raise ValueError(f"weights file {path} does not fit this trunk: " + ", ".join(problems))
    trunk.load_state_dict(renamed)


def _named(keys: list[str]) -> list[str]:
    """Trunk keys back in torchvision's names, for messages."""
    out = []
    for key in keys:
        head, _, rest = key.partition(".")
        out.append(f"{_TRUNK_NAME.get(head, head)}.{rest}" if rest else key)
    return out


class ImageEncoder(RegionEncoder):
    """A trunk as a negev region encoder.

    ``forward({"images": (B, 3, H, W) float}) -> (features (B, D, h, w), None)``: every cell of
    the h x w feature map is a region (no mask: images of a batch share one size).
    """

    def __init__(self, trunk: nn.Module, out_channels: int):
        super().__init__()
        self.trunk = trunk
        self.out_channels = out_channels

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, None]:
        return self.trunk(inputs["images"]), None
