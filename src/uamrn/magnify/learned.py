"""Learning-based motion magnification (Oh et al., ECCV 2018), loaded from a weights file.

The network has three parts. The encoder maps a frame to a texture representation (at a
quarter of the input resolution) and a shape representation (at half). The manipulator
takes the shape difference between onset and apex, passes it through a ReLU convolution
``g``, scales it by ``factor - 1``, refines it with ``h`` (a convolution and a residual
block), and adds it to the apex shape. The decoder renders the apex texture with the
manipulated shape.

Submodule and parameter names follow the PyTorch port whose checkpoints this loads
(``encoder.conv1_text``, ``manipulator.convblks.0.conv1`` ...), so a checkpoint loads with
``load_state_dict(strict=True)`` after its ``module.`` prefix is removed. Every convolution
has no bias and uses reflection padding.

Preprocessing and output were matched against reference frames that the original port
produced from a real CASME II pair (see ``docs/magnification.md`` for the comparison). The
network takes RGB frames, resized to 384 x 384 with Pillow's bilinear filter and scaled to
[-1, 1]. The amplification factor goes to the manipulator unchanged. The output is mapped
back with ``(y + 1) * 127.5``, rounded and clipped to 0..255, and stays RGB.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from uamrn.magnify.factors import check_factors
from uamrn.magnify.linear import check_pair

__all__ = ["LearnedMagnifier", "MagnificationNet", "load_magnification_net"]

logger = logging.getLogger(__name__)

NETWORK_SIZE = 384


class _Conv(nn.Module):
    """A bias-free convolution with reflection padding, optionally followed by ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, relu: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            padding_mode="reflect",
            bias=False,
        )
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(x)
        return torch.relu(y) if self.relu else y


class _ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 bias-free convolutions and reflection padding."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def _residual_stack(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(_ResidualBlock(channels) for _ in range(count)))


def _reflect_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        padding_mode="reflect",
        bias=False,
    )


class MagnifierEncoder(nn.Module):
    """Split a frame into texture and shape representations.

    Input (B, 3, H, W) in [-1, 1], with H and W multiples of 4. Outputs texture
    (B, 32, H/4, W/4) and shape (B, 32, H/2, W/2).
    """

    def __init__(self, n_blocks: int = 3, n_texture_blocks: int = 2, n_shape_blocks: int = 2) -> None:
        super().__init__()
        self.conv1 = _reflect_conv(3, 16, 7)
        self.conv2 = _reflect_conv(16, 32, 3, stride=2)
        self.resblks = _residual_stack(32, n_blocks)

        self.conv1_text = _reflect_conv(32, 32, 3, stride=2)
        self.resblks_text = _residual_stack(32, n_texture_blocks)

        self.conv1_shape = _reflect_conv(32, 32, 3)
        self.resblks_shape = _residual_stack(32, n_shape_blocks)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        common = torch.relu(self.conv1(frames))
        common = torch.relu(self.conv2(common))
        common = self.resblks(common)

        texture = self.resblks_text(torch.relu(self.conv1_text(common)))
        shape = self.resblks_shape(torch.relu(self.conv1_shape(common)))
        return texture, shape


class MagnifierManipulator(nn.Module):
    """Amplify the shape difference: ``shape_b + h((factor - 1) * g(shape_b - shape_a))``.

    ``g`` is a 7x7 convolution with ReLU, ``h`` a 3x3 convolution followed by residual blocks.
    """

    def __init__(self, n_blocks: int = 1) -> None:
        super().__init__()
        self.convblks = nn.Sequential(_Conv(32, 32, 7, relu=True))
        self.convblks_after = nn.Sequential(_Conv(32, 32, 3, relu=False))
        self.resblks = _residual_stack(32, n_blocks)

    def forward(self, shape_a: Tensor, shape_b: Tensor, factors: Tensor) -> Tensor:
        """Manipulate one pair for several factors.

        Args:
            shape_a: Shape representation of the onset, (1, 32, h, w).
            shape_b: Shape representation of the apex, (1, 32, h, w).
            factors: Amplification factors, (L,).

        Returns:
            Manipulated shape representations, (L, 32, h, w).
        """
        motion = self.convblks(shape_b - shape_a)

        # The 3x3 convolution of h is linear and bias-free, so it commutes with the scaling
        # by (factor - 1). It therefore runs once, and only the residual blocks run per factor.
        motion = self.convblks_after(motion)
        scaled = (factors - 1.0).view(-1, 1, 1, 1) * motion
        return shape_b + self.resblks(scaled)


class MagnifierDecoder(nn.Module):
    """Render a frame from a texture and a shape representation, output (B, 3, H, W)."""

    def __init__(self, n_blocks: int = 9) -> None:
        super().__init__()
        self.conv1_text = _reflect_conv(32, 32, 3)
        self.resblks = _residual_stack(64, n_blocks)
        self.conv1 = _reflect_conv(64, 32, 3)
        self.conv2 = _reflect_conv(32, 3, 7)

    def upsample_texture(self, texture: Tensor) -> Tensor:
        """Bring the texture to the shape resolution: (B, 32, h/2, w/2) -> (B, 32, h, w)."""
        upsampled = nn.functional.interpolate(texture, scale_factor=2, mode="nearest")
        return torch.relu(self.conv1_text(upsampled))

    def render(self, texture: Tensor, shape: Tensor) -> Tensor:
        """Decode an upsampled texture (B or 1, 32, h, w) with shapes (B, 32, h, w)."""
        texture = texture.expand(shape.shape[0], -1, -1, -1)
        joined = self.resblks(torch.cat([texture, shape], dim=1))
        joined = nn.functional.interpolate(joined, scale_factor=2, mode="nearest")
        return self.conv2(torch.relu(self.conv1(joined)))

    def forward(self, texture: Tensor, shape: Tensor) -> Tensor:
        return self.render(self.upsample_texture(texture), shape)


class MagnificationNet(nn.Module):
    """Encoder, manipulator and decoder of the learning-based magnifier (pure module)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MagnifierEncoder()
        self.manipulator = MagnifierManipulator()
        self.decoder = MagnifierDecoder()

    def encode_pair(self, onset: Tensor, apex: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Run the parts that do not depend on the factor, once per pair.

        Args:
            onset: Onset frame, (1, 3, H, W) in [-1, 1], H and W multiples of 4.
            apex: Apex frame, same shape.

        Returns:
            The decoder-side apex texture (1, 32, H/2, W/2), and the onset and apex shape
            representations, each (1, 32, H/2, W/2).
        """
        textures, shapes = self.encoder(torch.cat([onset, apex], dim=0))
        apex_texture = self.decoder.upsample_texture(textures[1:2])
        return apex_texture, shapes[0:1], shapes[1:2]

    def render(self, encoded: tuple[Tensor, Tensor, Tensor], factors: Tensor) -> Tensor:
        """Manipulate and decode an encoded pair for factors (L,), output (L, 3, H, W)."""
        apex_texture, onset_shape, apex_shape = encoded
        return self.decoder.render(apex_texture, self.manipulator(onset_shape, apex_shape, factors))

    def forward(self, onset: Tensor, apex: Tensor, factors: Tensor) -> Tensor:
        """Magnify one onset/apex pair for every factor.

        Args:
            onset: Onset frame, (1, 3, H, W) in [-1, 1], H and W multiples of 4.
            apex: Apex frame, same shape.
            factors: Amplification factors, (L,).

        Returns:
            Magnified frames, (L, 3, H, W), nominally in [-1, 1] (not clipped).
        """
        return self.render(self.encode_pair(onset, apex), factors)


def load_magnification_net(path: str | Path) -> MagnificationNet:
    """Build a ``MagnificationNet`` and load a checkpoint with ``torch.load(weights_only=True)``.

    The checkpoint may be a bare state dict or a dict with a ``state_dict`` entry. Keys may
    carry the ``module.`` prefix that ``nn.DataParallel`` adds.

    Raises:
        FileNotFoundError: When the file does not exist.
        ValueError: When the file cannot be read safely or its tensors do not fit the network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"learned magnifier weights not found: {path}; pass an existing file")

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError or EOFError here.
        raise ValueError(
            f"cannot load learned magnifier weights {path} with weights_only=True "
            f"({type(err).__name__}: {err}); "
            "pass a PyTorch checkpoint of the learning-based magnifier"
        ) from err

    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{path} contains no state dict of tensors (top-level type {type(checkpoint).__name__}); "
            "expected a dict with a 'state_dict' entry or a bare state dict"
        )
    state = {key.removeprefix("module."): value for key, value in state.items()}

    net = MagnificationNet()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"weights in {path} do not fit the learning-based magnifier of Oh et al.: {err}"
        ) from err
    logger.debug("loaded learned magnifier weights from %s", path)
    return net.eval()


class LearnedMagnifier:
    """Magnify onset-to-apex motion with the learning-based network, same interface as linear.

    Args:
        net: A loaded ``MagnificationNet``.
        network_size: Side of the square the frames are resized to before the network (a
            multiple of 4); the reference frames were made at 384.
        batch_size: Factors decoded together.
        device: Torch device for the network.
    """

    def __init__(
        self,
        net: MagnificationNet,
        network_size: int = NETWORK_SIZE,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
    ) -> None:
        if network_size < 8 or network_size % 4:
            raise ValueError(f"network_size must be a multiple of 4 and at least 8, got {network_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.network_size = network_size
        self.batch_size = batch_size

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "LearnedMagnifier":
        """Load weights from ``path`` safely (``weights_only=True``); kwargs go to the constructor."""
        return cls(load_magnification_net(path), **kwargs)

    def magnify(
        self,
        onset: np.ndarray,
        apex: np.ndarray,
        factors: Sequence[float] | np.ndarray,
        resize_back: bool = True,
    ) -> np.ndarray:
        """Magnify the onset-to-apex motion, one frame per amplification factor.

        Args:
            onset: Onset frame, uint8 RGB (H, W, 3), or grey (H, W) / (H, W, 1).
            apex: Apex frame, same shape and dtype.
            factors: L amplification factors, passed to the network as its factor.
            resize_back: Resize the output to (H, W); when False, frames stay at the network
                size, as in the reference frames.

        Returns:
            uint8 array (L, H, W, C) in the input's channel layout (or (L, H, W) for grey input),
            with H and W the network size when ``resize_back`` is False.
        """
        check_pair(onset, apex)
        values = check_factors(factors)
        height, width = onset.shape[:2]

        factor_tensor = torch.as_tensor(values, dtype=torch.float32, device=self.device)
        chunks = torch.split(factor_tensor, self.batch_size)
        outputs = []
        with torch.inference_mode():
            encoded = self.net.encode_pair(self._to_tensor(onset), self._to_tensor(apex))
            for chunk in tqdm(chunks, desc="learned magnifier", unit="batch", disable=len(chunks) < 2):
                outputs.append(self.net.render(encoded, chunk).cpu())
        output = torch.cat(outputs)

        frames_rgb = ((output.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round()
        frames_rgb = np.clip(frames_rgb, 0, 255).astype(np.uint8)

        frames = []
        for frame in frames_rgb:
            if resize_back and frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(self._to_input_layout(frame, onset))
        return np.stack(frames)

    def _to_tensor(self, image: np.ndarray) -> Tensor:
        """Convert a uint8 RGB or grey image to a (1, 3, S, S) RGB tensor in [-1, 1]."""
        if image.ndim == 2 or image.shape[2] == 1:
            rgb = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 3:
            rgb = image
        else:
            raise ValueError(
                f"learned magnifier needs RGB or grey frames, got {image.shape[2]} channels; "
                "drop the alpha channel or convert the frames to RGB"
            )

        size = self.network_size
        resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
        tensor = torch.from_numpy(resized.copy()).to(self.device, torch.float32).permute(2, 0, 1)[None]
        return tensor / 127.5 - 1.0

    @staticmethod
    def _to_input_layout(frame: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Return an RGB output frame in the channel layout of the input ``like``."""
        if like.ndim == 3 and like.shape[2] == 3:
            return frame
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return grey.reshape(grey.shape + (1,) * (like.ndim - 2))
