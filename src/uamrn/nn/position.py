"""Sinusoidal position encoding over the sequence index."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_encoding", "SinusoidalPositionEncoding"]


def sinusoidal_encoding(length: int, dim: int, device: torch.device | str | None = None) -> Tensor:
    """Build the sine/cosine encoding of Vaswani et al. (2017).

    Even channels hold sin(pos / 10000^(2i/dim)), odd channels the cosine of the same angle.

    Args:
        length: Sequence length L.
        dim: Encoding width; an odd width drops the last cosine channel.

    Returns:
        Float tensor (L, dim).
    """
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )
    angles = position * frequency  # (L, ceil(dim / 2))

    encoding = torch.zeros(length, dim, device=device)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return encoding


class SinusoidalPositionEncoding(nn.Module):
    """Add the sinusoidal encoding of each token's index; nothing is learned or saved."""

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x`` (B, L, D) plus the encoding of positions 0..L-1."""
        _, length, dim = x.shape
        return x + sinusoidal_encoding(length, dim, device=x.device).to(x.dtype)
