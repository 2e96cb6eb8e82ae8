"""Bucketed LSH attention: the same result as the dense masked form, computed bucket by bucket.

Query i may attend to key j when they share a bucket in at least one of the n_t hash
tables. The dense form scores all L_q x L_k pairs and masks them. Here, for each hash
table, queries and keys are grouped by bucket, every bucket is padded to the largest
bucket of its kind, and scores are computed only inside buckets. With w = 2**n_p buckets
of roughly equal size this costs about ``n_t * L**2 / w`` scores instead of ``L**2``.

A pair that shares a bucket in several tables must enter the softmax once. Each pair is
therefore counted only in the first table where the two share a bucket: in table t, pairs
that already share a bucket in an earlier table are masked out. The tables' partial sums
(per-query maximum score, sum of exponentials and exponential-weighted values) are then
merged as in a streaming softmax, which gives the softmax over the union of allowed keys.
A query with no allowed key gets an all-zero output, and neither the output nor the
gradient can be NaN.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from uamrn.nn.lsh import lsh_attention_mask, lsh_buckets

__all__ = ["BucketPlan", "bucketed_lsh_attention", "plan_buckets"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketPlan:
    """Sizes of the padded per-bucket layout for one call.

    Attributes:
        n_tables: n_t, hash tables.
        n_buckets: 2**n_p, buckets per table.
        max_queries: Largest number of queries in one bucket (over all rows and tables).
        max_keys: Largest number of keys in one bucket (over all rows and tables).
        mean_queries: Mean number of queries per bucket, L_q / n_buckets.
        mean_keys: Mean number of keys per bucket, L_k / n_buckets.
        padded_scores: Scores per row (batch x head) in the bucketed form,
            ``n_tables * n_buckets * max_queries * max_keys``.
        dense_scores: Scores per row in the dense form, ``L_q * L_k``.
    """

    n_tables: int
    n_buckets: int
    max_queries: int
    max_keys: int
    mean_queries: float
    mean_keys: float
    padded_scores: int
    dense_scores: int

    @property
    def use_buckets(self) -> bool:
        """True when the padded per-bucket layout has fewer scores than the dense form."""
        return self.padded_scores < self.dense_scores


def _bucket_ranks(buckets: Tensor, n_buckets: int) -> tuple[Tensor, Tensor]:
    """Number the elements of each bucket 0, 1, ... in sequence order.

    Args:
        buckets: Long (N, T, L) bucket ids.
        n_buckets: Buckets per table.

    Returns:
        Ranks within the bucket (N, T, L) and bucket sizes (N, T, n_buckets).
    """
    sizes = torch.zeros(*buckets.shape[:-1], n_buckets, dtype=torch.long, device=buckets.device)
    sizes.scatter_add_(-1, buckets, torch.ones_like(buckets))

    order = torch.argsort(buckets, dim=-1, stable=True)
    sorted_buckets = torch.gather(buckets, -1, order)
    starts = torch.cumsum(sizes, dim=-1) - sizes
    positions = torch.arange(buckets.shape[-1], device=buckets.device).expand_as(buckets)
    sorted_ranks = positions - torch.gather(starts, -1, sorted_buckets)

    ranks = torch.empty_like(buckets)
    ranks.scatter_(-1, order, sorted_ranks)
    return ranks, sizes


def _hash(q: Tensor, k: Tensor, hyperplanes: Tensor) -> tuple[Tensor, Tensor]:
    """Bucket ids of queries and keys, flattened to (N, T, L) with N the leading dimensions."""
    query_buckets = lsh_buckets(q, hyperplanes)
    key_buckets = lsh_buckets(k, hyperplanes)
    n_tables = query_buckets.shape[-2]
    return (
        query_buckets.reshape(-1, n_tables, q.shape[-2]),
        key_buckets.reshape(-1, n_tables, k.shape[-2]),
    )


def plan_buckets(q: Tensor, k: Tensor, hyperplanes: Tensor) -> BucketPlan:
    """Measure how evenly queries and keys fill the buckets, and the cost of the bucketed form.

    Args:
        q: Queries (..., L_q, d).
        k: Keys (..., L_k, d).
        hyperplanes: Normals (n_t, d, n_p), or with leading dimensions that broadcast
            against those of ``q`` (for example (H, n_t, d, n_p) for per-head tables).

    Returns:
        The plan; ``max_queries / mean_queries`` is the unevenness of the query buckets.
    """
    with torch.no_grad():
        query_buckets, key_buckets = _hash(q, k, hyperplanes)
    return _plan(query_buckets, key_buckets, hyperplanes.shape[-1])


def _plan(query_buckets: Tensor, key_buckets: Tensor, n_hyperplanes: int) -> BucketPlan:
    n_buckets = 2**n_hyperplanes
    n_tables = query_buckets.shape[1]
    length_q, length_k = query_buckets.shape[-1], key_buckets.shape[-1]
    query_sizes = torch.bincount(query_buckets.flatten(0, 1).add(
        n_buckets * torch.arange(query_buckets.shape[0] * n_tables, device=query_buckets.device)[:, None]
    ).flatten())
    key_sizes = torch.bincount(key_buckets.flatten(0, 1).add(
        n_buckets * torch.arange(key_buckets.shape[0] * n_tables, device=key_buckets.device)[:, None]
    ).flatten())
    max_queries = int(query_sizes.max()) if query_sizes.numel() else 0
    max_keys = int(key_sizes.max()) if key_sizes.numel() else 0
    return BucketPlan(
        n_tables=n_tables,
        n_buckets=n_buckets,
        max_queries=max_queries,
        max_keys=max_keys,
        mean_queries=length_q / n_buckets,
        mean_keys=length_k / n_buckets,
        padded_scores=n_tables * n_buckets * max_queries * max_keys,
        dense_scores=length_q * length_k,
    )


def _dense_masked(q: Tensor, k: Tensor, v: Tensor, hyperplanes: Tensor, scale: float) -> Tensor:
    """Compute the dense masked form, for buckets too uneven for the padded layout to save work."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    mask = lsh_attention_mask(q, k, hyperplanes)
    filled = torch.where(mask, scores, scores.new_tensor(torch.finfo(scores.dtype).min))
    row_max = filled.amax(dim=-1, keepdim=True).detach()
    weights = torch.exp(filled - row_max) * mask
    total = weights.sum(dim=-1, keepdim=True)
    weights = weights / torch.where(mask.any(dim=-1, keepdim=True), total, torch.ones_like(total))
    return torch.matmul(weights, v)


def _slot_sources(buckets: Tensor, ranks: Tensor, bucket_size: int, n_buckets: int) -> Tensor:
    """Map each slot of the padded per-bucket layout to the flattened row it holds.

    Args:
        buckets: Long (N, T, L) bucket ids.
        ranks: Long (N, T, L) rank of each element within its bucket.
        bucket_size: Slots per bucket (the largest bucket).
        n_buckets: Buckets per table.

    Returns:
        Long (N, T, n_buckets * bucket_size): the row in ``[0, N * L)`` for a filled slot,
        and ``N * L`` for an empty one.
    """
    n_rows, n_tables, length = buckets.shape
    slots = buckets * bucket_size + ranks
    source = torch.full(
        (n_rows, n_tables, n_buckets * bucket_size), n_rows * length, dtype=torch.long, device=buckets.device
    )
    row_ids = torch.arange(n_rows * length, device=buckets.device).view(n_rows, 1, length).expand_as(slots)
    return source.scatter_(-1, slots, row_ids)


def _gather_rows(rows: Tensor, source: Tensor, n_rows: int) -> Tensor:
    """Copy rows (N * L, F) into slots. An empty slot reads row 0, which the caller masks or drops."""
    index = torch.where(source < n_rows, source, torch.zeros_like(source)).reshape(-1)
    return rows.index_select(0, index).view(*source.shape, rows.shape[-1])


def bucketed_lsh_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    hyperplanes: Tensor,
    *,
    scale: float | None = None,
    dense_fallback: bool = True,
) -> Tensor:
    """Attend from each query to the keys that share a bucket with it in at least one hash table.

    Equal, up to float rounding, to a softmax over the allowed keys of the dense
    ``(L_q, L_k)`` score matrix masked by :func:`uamrn.nn.lsh.lsh_attention_mask`, followed
    by the product with ``v``. When the buckets are so uneven that the padded layout would
    hold at least as many scores as the dense matrix, the dense masked form is computed
    instead (same result, quadratic memory).

    Args:
        q: Queries (..., L_q, d), for example (B, H, L, d_head).
        k: Keys (..., L_k, d), same leading dimensions as ``q``.
        v: Values (..., L_k, d_v), same leading dimensions as ``q``.
        hyperplanes: Normals (n_t, d, n_p), or with leading dimensions that broadcast
            against those of ``q`` (for example (H, n_t, d, n_p) for per-head tables).
        scale: Factor on the dot products; ``1 / sqrt(d)`` when None.
        dense_fallback: Compute the dense masked form when the padded layout would not
            be smaller; False always uses the padded layout (for tests).

    Returns:
        Attention output (..., L_q, d_v); all zeros for a query with no allowed key.
    """
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} do not fit together; "
            "expected q (..., L_q, d), k (..., L_k, d) and v (..., L_k, d_v)"
        )
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    leading = q.shape[:-2]
    length_q, length_k, width_v = q.shape[-2], k.shape[-2], v.shape[-1]
    if length_q == 0 or length_k == 0:
        return v.new_zeros(*leading, length_q, width_v)

    with torch.no_grad():
        query_buckets, key_buckets = _hash(q, k, hyperplanes)
    plan = _plan(query_buckets, key_buckets, hyperplanes.shape[-1])
    if dense_fallback and not plan.use_buckets:
        logger.debug("buckets too uneven (%s); using the dense masked form", plan)
        return _dense_masked(q, k, v, hyperplanes, scale)

    n_rows, n_tables = query_buckets.shape[:2]
    n_buckets = plan.n_buckets
    query_ranks, _ = _bucket_ranks(query_buckets, n_buckets)
    key_ranks, _ = _bucket_ranks(key_buckets, n_buckets)

    # Padded per-bucket layout: (N, T, n_buckets, slots, width) for each of q, k and v; q is
    # scaled before it is copied n_t times.
    # Empty key slots are masked out of the softmax and empty query slots are never read back.
    query_source = _slot_sources(query_buckets, query_ranks, plan.max_queries, n_buckets)
    key_source = _slot_sources(key_buckets, key_ranks, plan.max_keys, n_buckets)
    q_pad = _gather_rows((q * scale).reshape(-1, q.shape[-1]), query_source, n_rows * length_q)
    k_pad = _gather_rows(k.reshape(-1, k.shape[-1]), key_source, n_rows * length_k)
    v_pad = _gather_rows(v.reshape(-1, width_v), key_source, n_rows * length_k)
    q_pad = q_pad.view(n_rows, n_tables, n_buckets, plan.max_queries, -1)
    k_pad = k_pad.view(n_rows, n_tables, n_buckets, plan.max_keys, -1)
    v_pad = v_pad.view(n_rows, n_tables, n_buckets, plan.max_keys, width_v)

    allowed = _allowed_pairs(query_buckets, key_buckets, query_source, key_source, plan)

    # Softmax over the allowed keys within each table and bucket, and its log-sum-exp. In a
    # row with no allowed key every score is the lowest finite float, so the row stays finite,
    # and the merge below gives it weight zero.
    lowest = torch.finfo(q.dtype).min
    scores = torch.matmul(q_pad, k_pad.transpose(-2, -1)).masked_fill_(~allowed, lowest)
    row_lse = torch.logsumexp(scores, dim=-1)
    row_values = torch.matmul(torch.softmax(scores, dim=-1), v_pad)

    # Back from slots to queries: (N, T, L_q) and (N, T, L_q, d_v).
    slots_per_table = n_buckets * plan.max_queries
    query_slots = query_buckets * plan.max_queries + query_ranks
    flat_slots = query_slots + slots_per_table * torch.arange(n_rows * n_tables, device=q.device).view(
        n_rows, n_tables, 1
    )
    table_lse = row_lse.reshape(-1)[flat_slots]
    table_values = row_values.reshape(-1, width_v).index_select(0, flat_slots.reshape(-1))
    table_values = table_values.view(n_rows, n_tables, length_q, width_v)

    # Merge the tables as sum_t exp(lse_t) * out_t / sum_t exp(lse_t). A table without an
    # allowed key for the query has a log-sum-exp near the lowest float and adds nothing.
    has_key = table_lse > lowest / 2
    table_lse = torch.where(has_key, table_lse, torch.full_like(table_lse, -math.inf))
    overall = table_lse.detach().amax(dim=1, keepdim=True)
    overall = torch.where(torch.isfinite(overall), overall, torch.zeros_like(overall))
    table_weight = torch.exp(table_lse - overall)

    numerator = (table_weight.unsqueeze(-1) * table_values).sum(dim=1)
    denominator = table_weight.sum(dim=1)
    denominator = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    out = numerator / denominator.unsqueeze(-1)
    return out.view(*leading, length_q, width_v)


def _allowed_pairs(
    query_buckets: Tensor, key_buckets: Tensor, query_source: Tensor, key_source: Tensor, plan: BucketPlan
) -> Tensor:
    """Mark the slot pairs each table counts: a real key that shares no bucket in an earlier table.

    Within one table and bucket every real query-key pair shares that table's bucket, so
    only the earlier tables need checking. Each allowed pair is thus counted exactly once.

    Returns:
        Bool (N, T, n_buckets, max_queries, max_keys).
    """
    n_rows, n_tables, length_q = query_buckets.shape
    length_k = key_buckets.shape[-1]
    shape = (n_rows, n_tables, plan.n_buckets)

    key_is_real = (key_source < n_rows * length_k).view(*shape, 1, plan.max_keys)
    allowed = key_is_real.expand(*shape, plan.max_queries, plan.max_keys).clone()
    if n_tables == 1:
        return allowed

    # Bucket ids in every table for each slot; empty query slots get -1, empty key slots -2.
    query_ids = torch.cat([query_buckets.transpose(1, 2).reshape(-1, n_tables), query_buckets.new_full((1, n_tables), -1)])
    key_ids = torch.cat([key_buckets.transpose(1, 2).reshape(-1, n_tables), key_buckets.new_full((1, n_tables), -2)])
    query_ids = query_ids[query_source].view(*shape, plan.max_queries, n_tables)
    key_ids = key_ids[key_source].view(*shape, plan.max_keys, n_tables)

    for earlier in range(n_tables - 1):
        later = slice(earlier + 1, None)
        shared = query_ids[:, later, ..., earlier].unsqueeze(-1) == key_ids[:, later, ..., earlier].unsqueeze(-2)
        allowed[:, later] &= ~shared
    return allowed
