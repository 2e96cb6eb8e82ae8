"""ResNet-18 with torchvision's parameter names, checkpoint loading, and a truncated front end.

torchvision cannot be installed beside the project's torch, so the network is written
here. Its ``state_dict`` keys and shapes equal those of ``torchvision.models.resnet18``
(checked against a listing taken from torchvision 0.29.1), so torchvision checkpoints
load strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from uamrn.nn.frontend import FrontEnd, check_frames, resize

__all__ = ["BasicBlock", "ResNet18", "ResNet18FrontEnd", "load_resnet18_checkpoint", "STAGE_CHANNELS"]

logger = logging.getLogger(__name__)

STAGES = ("layer1", "layer2", "layer3", "layer4")
STAGE_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """Map (N, C_in, H, W) to (N, C_out, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al., 2016) laid out as torchvision's ``resnet18``.

    Args:
        num_classes: Width of the final ``fc`` layer (1000 for ImageNet checkpoints).
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, stride=2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, stride=2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, stride=2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor, stage: str = "layer4") -> Tensor:
        """Run the network up to and including ``stage``.

        Args:
            x: Normalised images (N, 3, H, W).
            stage: ``layer1`` .. ``layer4``.

        Returns:
            Feature map (N, STAGE_CHANNELS[stage], H / s, W / s); s is 4, 8, 16 or 32.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown ResNet-18 stage {stage!r}; use one of {', '.join(STAGES)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in STAGES:
            x = getattr(self, name)(x)
            if name == stage:
                break
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Map normalised images (N, 3, H, W) to class logits (N, num_classes)."""
        pooled = self.avgpool(self.features(x, "layer4")).flatten(1)
        return self.fc(pooled)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"ResNet-18 weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe pickles
        raise ValueError(
            f"cannot read ResNet-18 weights {path}: {err}; give a torch state_dict "
            "(.pth/.pt/.pth.tar) or a .safetensors file"
        ) from err
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} contains a {type(loaded).__name__}, not a state_dict; save model.state_dict()")
    return loaded


def load_resnet18_checkpoint(path: Path | str) -> tuple[ResNet18, bool]:
    """Load a ResNet-18 checkpoint in torchvision or FER+ (Emotion-FAN) format.

    torchvision format (keys as ``torchvision.models.resnet18().state_dict()``) loads
    strictly, including ``fc``. FER+ format (a dict with ``state_dict`` whose keys carry a
    ``module.`` prefix) has the prefix removed and ``fc.*`` dropped. Every other key of
    the network must then be present with the right shape, and no extra key is allowed.
    A file is taken to be in FER+ format when any of its keys starts with ``module.``.

    Args:
        path: ``.pth``, ``.pt``, ``.pth.tar`` or ``.safetensors`` file.

    Returns:
        The model in evaluation mode, and True when the classifier ``fc`` was loaded.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a state_dict, or a key is missing, extra or of the wrong shape.
    """
    path = Path(path)
    state = _read_state_dict(path)

    # FER+ releases wrap the network in DataParallel ("module." prefix) and their
    # classifier width differs per release, so it is dropped.
    fer_format = any(key.startswith("module.") for key in state)
    if fer_format:
        state = {
            key.removeprefix("module."): value
            for key, value in state.items()
            if not key.removeprefix("module.").startswith("fc.")
        }
    has_fc = not fer_format
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 1000

    model = ResNet18(num_classes=num_classes)
    expected = model.state_dict()
    if not has_fc:
        expected = {key: value for key, value in expected.items() if not key.startswith("fc.")}

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{path} is not a ResNet-18 checkpoint in torchvision or FER+ format: "
            f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}, wrong shapes {wrong_shape[:5]}"
            " (first five of each); convert it to torchvision key names"
        )

    model.load_state_dict(state, strict=has_fc)
    logger.info("loaded ResNet-18 weights from %s (classifier %s)", path, "loaded" if has_fc else "dropped")
    return model.eval(), has_fc


class ResNet18FrontEnd(FrontEnd):
    """ResNet-18 truncated after a stage, average-pooled to pool x pool and flattened.

    Frames are resized to 224 x 224 and normalised with the ImageNet mean and standard
    deviation. Through ``layer3`` a 224 x 224 frame gives a 256 x 14 x 14 map.

    NOTE: FER+ checkpoints may have been trained with another input normalisation; this
    front end always applies the ImageNet one.

    Args:
        network: The ResNet-18 whose layers are used.
        stage: Last stage kept (``layer1`` .. ``layer4``).
        pool: Side of the pooled grid.
    """

    size = 224

    def __init__(self, network: ResNet18, stage: str = "layer3", pool: int = 2) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown ResNet-18 stage {stage!r}; use one of {', '.join(STAGES)}")
        self.network = network
        self.stage = stage
        self.pool = pool
        self.feature_dim = STAGE_CHANNELS[stage] * pool * pool

        # Layers after the truncation point are never run; dropping them saves memory.
        for name in STAGES[STAGES.index(stage) + 1 :]:
            setattr(self.network, name, nn.Identity())
        self.network.fc = nn.Identity()

        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: Path | str, stage: str = "layer3", pool: int = 2) -> "ResNet18FrontEnd":
        """Build the front end from a torchvision or FER+ checkpoint (see :func:`load_resnet18_checkpoint`)."""
        network, _ = load_resnet18_checkpoint(path)
        return cls(network, stage=stage, pool=pool)

    def forward(self, frames: Tensor) -> Tensor:
        """Map RGB frames (N, 3, H, W) in [0, 1] to features (N, channels * pool * pool)."""
        check_frames(frames)
        x = (resize(frames, self.size) - self.mean) / self.std
        feature_map = self.network.features(x, self.stage)
        return F.adaptive_avg_pool2d(feature_map, self.pool).flatten(1)
