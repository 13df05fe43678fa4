"""The image plugin's options (``--set key=value``, ``[plugin]`` in TOML), declared once."""

from __future__ import annotations

from dataclasses import dataclass

from negev.plugins.options import option
from negev_image.crf import DenseCRF
from negev_image.images import MAX_PIXELS
from negev_image.wsol import RESIZE_LENGTH

__all__ = ["IMAGE_SIZE", "ImageOptions"]

IMAGE_SIZE = 448  # the side images on disk are resized to, and the papers' image width


@dataclass(frozen=True)
class ImageOptions:
    """Options of the ``image`` plugin; ``image_size`` and ``augment`` left at None are
    resolved from the data by ``fit_state`` (the demo's canvas and no augmentation for the
    digits demo, whose digits a flip would change; 448 and augmentation for data on disk)."""

    trunk: str = option("small", "small, or resnet18 ... resnet152 (--weights: torchvision's)")
    width: int = option(32, "small trunk: channels", applies={"trunk": ("small",)})
    spatial: int = option(5, "small trunk: 3x3 layers", applies={"trunk": ("small",)})
    image_size: int | None = option(None, f"side images are resized to (default {IMAGE_SIZE})")
    augment: bool | None = option(None, "random resized crop + flip in training")
    crop_scale: float = option(0.5, "augment: smallest area share of a crop, in (0, 1]")
    max_pixels: int = option(MAX_PIXELS, "most pixels of an image; a larger one is a bad item")
    test_scales: tuple[int, ...] = option((), "test-time sides averaged, e.g. 448,576")
    test_flip: bool = option(False, "test time: also each view flipped")
    image_root: str | None = option(None, "COCO: the images' directory")
    classes: str | None = option(None, "CSV: the class list, |-separated")
    demo_train: int = option(2000, "demo: training canvases")
    demo_val: int = option(300, "demo: validation canvases")
    demo_test: int = option(600, "demo: test canvases")
    canvas: int = option(64, "demo: canvas side in pixels")
    pointing_tolerance: float | None = option(None, "pointing AP tolerance, px (18 at 448)")
    game_tolerance: float | None = option(None, "pointing game tolerance, px (15 at 448)")
    seg_threshold: float = option(0.5, "segmentation: background threshold")
    wsol_size: int = option(RESIZE_LENGTH, "WSOL protocol side (0: the image's own)")
    wsol_interval: float = option(0.01, "WSOL protocol: threshold step")
    crf: bool = option(False, "also mIoU after a dense CRF (miou_crf)")
    crf_pixels: int = option(
        DenseCRF.max_pixels, "dense CRF: most pixels solved", applies={"crf": (True,)}
    )

    def __post_init__(self) -> None:
        if not 0 < self.crop_scale <= 1:
            raise ValueError(f"plugin option crop_scale must be in (0, 1], got {self.crop_scale}")
        if self.max_pixels < 1:
            raise ValueError(f"plugin option max_pixels must be >= 1, got {self.max_pixels}")
