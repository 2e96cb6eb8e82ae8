"""One SSA block: pre-norm self-attention and a feed-forward layer, each with a residual."""

from __future__ import annotations

from torch import Tensor, nn

from uamrn.nn.attention import SparseSelfAttention
from uamrn.nn.dropout import MCDropout

__all__ = ["SSABlock"]


class SSABlock(nn.Module):
    """Pre-norm transformer block whose attention is :class:`SparseSelfAttention`.

    Dropout (on the attention weights, after attention and inside the feed-forward layer)
    is :class:`MCDropout`, so it can stay on for Monte-Carlo passes at inference.

    Args:
        d_model: Token width D.
        n_heads: Attention heads.
        n_hyperplanes: n_p, hyperplanes per hash table.
        n_tables: n_t, hash tables.
        attention: ``"sparse"`` or ``"full"``.
        attention_impl: ``"auto"``, ``"dense"`` or ``"bucketed"``.
        redraw_hyperplanes: Redraw hyperplanes on each training forward.
        dropout: Dropout rate.
        mlp_ratio: Hidden width of the feed-forward layer, as a multiple of D.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_hyperplanes: int = 3,
        n_tables: int = 4,
        attention: str = "sparse",
        attention_impl: str = "auto",
        redraw_hyperplanes: bool = False,
        dropout: float = 0.1,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        hidden = max(1, round(d_model * mlp_ratio))

        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SparseSelfAttention(
            d_model,
            n_heads,
            n_hyperplanes=n_hyperplanes,
            n_tables=n_tables,
            attention=attention,
            attention_impl=attention_impl,
            redraw_hyperplanes=redraw_hyperplanes,
            dropout=dropout,
        )
        self.drop1 = MCDropout(dropout)

        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.GELU(),
            MCDropout(dropout),
            nn.Linear(hidden, d_model),
        )
        self.drop2 = MCDropout(dropout)

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        """Map tokens (B, L, D) to tokens (B, L, D); also the weights (B, H, L, L) when asked."""
        attended, weights = self.attn(self.norm1(x), return_attention=return_attention)
        x = x + self.drop1(attended)
        x = x + self.drop2(self.mlp(self.norm2(x)))
        return x, weights
