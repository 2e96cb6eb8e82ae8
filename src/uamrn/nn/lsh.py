"""Locality-sensitive hashing with random hyperplanes, and the same-bucket attention mask.

A vector's bucket in one hash table is the bit pattern of the signs of its dot products
with that table's ``n_p`` hyperplanes, so each table has ``2**n_p`` buckets. Query i may
attend to key j when the two share a bucket in at least one of the ``n_t`` tables.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["draw_hyperplanes", "lsh_buckets", "lsh_attention_mask"]


def draw_hyperplanes(
    n_tables: int,
    dim: int,
    n_hyperplanes: int,
    *,
    n_heads: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw Gaussian hyperplane normals for ``n_tables`` hash tables.

    Args:
        n_tables: n_t, the number of independent hash tables.
        dim: Width d of the hashed vectors (the per-head width in attention).
        n_hyperplanes: n_p, hyperplanes per table; each table has ``2**n_p`` buckets.
        n_heads: When given, draw one independent set per attention head.
        generator: Random generator; the global one when None.
        device: Device of the result.

    Returns:
        Float tensor (n_t, d, n_p), or (n_heads, n_t, d, n_p) when ``n_heads`` is given.
    """
    shape = (n_tables, dim, n_hyperplanes) if n_heads is None else (n_heads, n_tables, dim, n_hyperplanes)
    return torch.randn(shape, generator=generator, device=device)


def lsh_buckets(x: Tensor, hyperplanes: Tensor) -> Tensor:
    """Hash vectors into buckets, one bucket id per hash table.

    Bit p of the bucket id is 1 where the dot product with hyperplane p is positive
    (a dot product of exactly zero gives bit 0).

    Args:
        x: Vectors (..., L, d).
        hyperplanes: Normals (n_t, d, n_p). Extra leading dimensions broadcast against the
            leading dimensions of ``x``. For example, x (B, H, L, d) with hyperplanes
            (H, n_t, d, n_p) hashes each head with its own tables.

    Returns:
        Long tensor (..., n_t, L) of bucket ids in ``[0, 2**n_p)``.
    """
    return _bucket_ids(x, hyperplanes).transpose(-1, -2)


def _bucket_ids(x: Tensor, hyperplanes: Tensor) -> Tensor:
    """Compute the bucket ids in (..., L, n_t) layout, which the mask compares without a copy."""
    if x.shape[-1] != hyperplanes.shape[-2]:
        raise ValueError(
            f"vectors of width {x.shape[-1]} cannot be hashed with hyperplanes of width "
            f"{hyperplanes.shape[-2]} (hyperplanes shape {tuple(hyperplanes.shape)}); "
            "draw the hyperplanes with the per-head width"
        )

    n_tables, dim, n_p = hyperplanes.shape[-3:]
    if n_p > 62:
        raise ValueError(f"n_p = {n_p} hyperplanes per table do not fit an int64 bucket id; use at most 62")

    # All tables in one matmul: (..., L, d) @ (..., d, n_t * n_p). Broadcasting x against
    # a (..., n_t, d, n_p) tensor instead would copy x once per table.
    planes = hyperplanes.to(x.dtype).movedim(-3, -2).reshape(*hyperplanes.shape[:-3], dim, n_tables * n_p)
    with torch.no_grad():  # bucket ids are integers, so no gradient flows through hashing
        projections = torch.matmul(x, planes)
    bits = (projections > 0).unflatten(-1, (n_tables, n_p)).long()  # (..., L, n_t, n_p)
    powers = 2 ** torch.arange(n_p, device=x.device)
    return (bits * powers).sum(dim=-1)


def lsh_attention_mask(q: Tensor, k: Tensor, hyperplanes: Tensor) -> Tensor:
    """Mark the query-key pairs that share a bucket in at least one hash table.

    Queries and keys are hashed with the same hyperplanes.

    Args:
        q: Queries (..., L_q, d).
        k: Keys (..., L_k, d), with the same leading dimensions as ``q``.
        hyperplanes: Normals (n_t, d, n_p), broadcast as in :func:`lsh_buckets`.

    Returns:
        Bool tensor (..., L_q, L_k), True where query i may attend to key j.
    """
    query_buckets = _bucket_ids(q, hyperplanes)  # (..., L_q, n_t)
    key_buckets = _bucket_ids(k, hyperplanes)  # (..., L_k, n_t)
    same_bucket = query_buckets.unsqueeze(-2) == key_buckets.unsqueeze(-3)  # (..., L_q, L_k, n_t)
    return same_bucket.any(dim=-1)
