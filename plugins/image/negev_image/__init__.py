"""negev modality plugin for images: CNN feature-map cells as regions (a torchvision ResNet or a
small CNN), WILDCAT heads, weakly supervised localization and segmentation metrics."""

from negev_image.plugin import ImagePlugin

__all__ = ["ImagePlugin"]
