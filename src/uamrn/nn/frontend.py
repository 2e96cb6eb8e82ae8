"""Frozen per-frame feature extractors ("front ends") and the factory that builds them by name."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uamrn.config import FrontEndConfig

__all__ = ["FrontEnd", "FlowPixels", "build_frontend", "check_frames"]

logger = logging.getLogger(__name__)

# ITU-R BT.601 luma weights, as used by OpenCV's RGB-to-grey conversion.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def check_frames(frames: Tensor) -> None:
    """Raise ValueError unless ``frames`` is a float (N, 3, H, W) batch."""
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"frames must have shape (N, 3, H, W) with RGB channels, got {tuple(frames.shape)}"
        )
    if not frames.is_floating_point():
        raise ValueError(f"frames must be float in [0, 1], got dtype {frames.dtype}; divide uint8 images by 255")


def to_grey(frames: Tensor) -> Tensor:
    """Convert RGB frames (N, 3, H, W) to grey (N, 1, H, W) with BT.601 weights."""
    weights = frames.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (frames * weights).sum(dim=1, keepdim=True)


def resize(frames: Tensor, size: int) -> Tensor:
    """Resize (N, C, H, W) to (N, C, size, size) bilinearly with antialiasing; no-op when already that size."""
    if frames.shape[-2:] == (size, size):
        return frames
    return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class FrontEnd(nn.Module):
    """A frozen feature extractor: always in evaluation mode, no parameter requires grad.

    Subclasses set ``feature_dim`` and implement ``forward(frames (N, 3, H, W) in [0, 1])
    -> (N, feature_dim)``, doing their own resizing and colour conversion.
    """

    feature_dim: int

    def freeze(self) -> "FrontEnd":
        """Stop gradients into every parameter and switch to evaluation mode."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "FrontEnd":
        """Stay in evaluation mode whatever ``mode`` is, so BatchNorm statistics never change."""
        return super().train(False)


class FlowPixels(FrontEnd):
    """Resize each frame to 28 x 28, subtract each channel's mean, and flatten.

    Meant for optical-flow images whose channels are min-max normalised per image, where
    zero motion has no fixed level: the per-frame channel mean is the reference.
    """

    size = 28

    def __init__(self) -> None:
        super().__init__()
        self.feature_dim = 3 * self.size * self.size

    def forward(self, frames: Tensor) -> Tensor:
        """Map frames (N, 3, H, W) in [0, 1] to centred pixels (N, 2352)."""
        check_frames(frames)
        small = resize(frames, self.size)
        centred = small - small.mean(dim=(-2, -1), keepdim=True)
        return centred.flatten(start_dim=1)


def build_frontend(cfg: FrontEndConfig) -> FrontEnd:
    """Build the frozen front end named by ``cfg.name``.

    Args:
        cfg: ``name`` is ``mini_xception`` (shipped FER2013 weights), ``resnet18`` (weights
            from ``cfg.weights``, torchvision or FER+ format, truncated after
            ``cfg.resnet_stage``) or ``flow_pixels``; ``pool`` sets the pooled grid size.

    Returns:
        A :class:`FrontEnd` in evaluation mode with no trainable parameter.
    """
    if cfg.name == "flow_pixels":
        return FlowPixels().freeze()

    if cfg.name == "mini_xception":
        from uamrn.nn.mini_xception import MiniXceptionFrontEnd

        return MiniXceptionFrontEnd(pool=cfg.pool).freeze()

    if cfg.name == "resnet18":
        from uamrn.nn.resnet import ResNet18FrontEnd

        if cfg.weights is None:
            raise ValueError(
                "front end resnet18 needs a weights file (frozen random features carry no "
                "information); set frontend.weights to a torchvision or FER+ ResNet-18 checkpoint"
            )
        return ResNet18FrontEnd.from_file(cfg.weights, stage=cfg.resnet_stage, pool=cfg.pool).freeze()

    raise ValueError(f"unknown front end {cfg.name!r}; use mini_xception, resnet18 or flow_pixels")
