"""Multi-head self-attention, either LSH-sparse (SSA) or full, with a NaN-safe masked softmax."""

from __future__ import annotations

import importlib
import logging
import math

import torch
from torch import Tensor, nn

from uamrn.nn.dropout import MCDropout
from uamrn.nn.lsh import draw_hyperplanes, lsh_attention_mask

__all__ = ["masked_softmax", "SparseSelfAttention"]

logger = logging.getLogger(__name__)

# Sequences longer than this use the bucketed implementation when attention_impl is "auto".
AUTO_BUCKETED_ABOVE_LENGTH = 256


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the allowed entries of the last dimension; all-zero rows where none is allowed.

    Masked scores are replaced by the lowest finite value of the dtype, whose exponential
    underflows to exactly zero next to any allowed score. A row with no allowed key would
    come out uniform, so it is set to zero; its upstream gradient is then zero too. No
    -inf enters the softmax, so neither the output nor the gradient can become NaN.

    Args:
        scores: Attention logits (..., L_q, L_k).
        mask: Bool (..., L_q, L_k), True where the key is allowed; broadcasts against scores.

    Returns:
        Weights of the shape of ``scores``; each row sums to 1, or to 0 when it has no allowed key.
    """
    weights = torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)
    keyless = ~mask.any(dim=-1, keepdim=True)
    # Skipping the fill when every row has a key saves two passes over the weights; the
    # check costs one device synchronisation on a GPU.
    if bool(keyless.any()):
        weights = weights.masked_fill(keyless, 0.0)
    return weights


def _bucketed_attention_fn():
    """Return ``uamrn.nn.lsh_bucketed.bucketed_lsh_attention``, or None when that module is absent."""
    try:
        module = importlib.import_module("uamrn.nn.lsh_bucketed")
    except ImportError:
        return None
    return getattr(module, "bucketed_lsh_attention", None)


class SparseSelfAttention(nn.Module):
    """Multi-head self-attention restricted to same-bucket query-key pairs (or full attention).

    Queries and keys are separate projections, so a query may share no bucket with any
    key; its attention output is then exactly zero. The output projection has no bias,
    so such a query adds nothing to the residual stream either.

    Hyperplanes are a buffer drawn at initialisation and saved with the model. With
    ``redraw_hyperplanes`` a fresh set is drawn on every forward in training mode.
    Evaluation always uses the saved set, so inference is deterministic for a model file.

    Args:
        d_model: Token width D.
        n_heads: Number of heads H; D must be divisible by H.
        n_hyperplanes: n_p, hyperplanes per hash table.
        n_tables: n_t, hash tables whose same-bucket pairs are unioned.
        attention: ``"sparse"`` (SSA) or ``"full"`` (softmax over all keys).
        attention_impl: ``"dense"`` (masked L x L scores), ``"bucketed"`` (sort by bucket,
            from ``uamrn.nn.lsh_bucketed`` when that module exists) or ``"auto"``
            (bucketed for L > 256).
        redraw_hyperplanes: Redraw the hyperplanes on each training forward.
        dropout: Dropout rate on the attention weights.
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
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if attention not in ("sparse", "full"):
            raise ValueError(f"attention must be 'sparse' or 'full', got {attention!r}")
        if attention_impl not in ("auto", "dense", "bucketed"):
            raise ValueError(f"attention_impl must be 'auto', 'dense' or 'bucketed', got {attention_impl!r}")

        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.attention = attention
        self.attention_impl = attention_impl
        self.redraw_hyperplanes = redraw_hyperplanes

        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.attn_dropout = MCDropout(dropout)

        self.register_buffer(
            "hyperplanes", draw_hyperplanes(n_tables, self.d_head, n_hyperplanes, n_heads=n_heads)
        )
        self._warned_no_bucketed = False

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.d_head).transpose(1, 2)

    def _current_hyperplanes(self) -> Tensor:
        if self.training and self.redraw_hyperplanes:
            return torch.randn_like(self.hyperplanes)
        return self.hyperplanes

    def _use_bucketed(self, length: int, return_attention: bool) -> bool:
        if self.attention != "sparse" or return_attention:
            return False
        requested = self.attention_impl == "bucketed" or (
            self.attention_impl == "auto" and length > AUTO_BUCKETED_ABOVE_LENGTH
        )
        if not requested:
            return False
        if _bucketed_attention_fn() is None:
            if not self._warned_no_bucketed:
                logger.warning(
                    "bucketed LSH attention requested but uamrn.nn.lsh_bucketed is not available; "
                    "using the dense masked form"
                )
                self._warned_no_bucketed = True
            return False
        return True

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        """Attend within the sequence.

        Args:
            x: Tokens (B, L, D).
            return_attention: Also return the attention weights (forces the dense form).

        Returns:
            Output tokens (B, L, D), and the weights (B, H, L, L) or None. Rows of the
            weights sum to 1, or to 0 for a query with no allowed key; dropout is applied
            after the weights are returned.
        """
        batch, length, _ = x.shape
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))

        if self._use_bucketed(length, return_attention):
            # NOTE: the bucketed form applies no dropout to the attention weights.
            context = _bucketed_attention_fn()(q, k, v, self._current_hyperplanes())
            weights = None
        else:
            context, weights = self._dense(q, k, v)

        context = context.transpose(1, 2).reshape(batch, length, self.d_model)
        return self.out(context), (weights if return_attention else None)

    def _dense(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_head)  # (B, H, L, L)

        if self.attention == "sparse":
            mask = lsh_attention_mask(q, k, self._current_hyperplanes())
            weights = masked_softmax(scores, mask)
        else:
            weights = torch.softmax(scores, dim=-1)

        context = torch.matmul(self.attn_dropout(weights), v)
        return context, weights
