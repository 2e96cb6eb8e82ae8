"""Bucketed LSH attention: the same result as the dense masked form, computed bucket by bucket.

Query i may attend to key j when they share a bucket in at least one of the n_t hash
tables. The dense form scores all L_q x L_k pairs and masks them. Here each (row, table,
bucket) is a *unit*: its queries attend to its keys in one block of scores. A unit's
query and key counts are rounded up to a multiple of ``block_size``, and units of equal
rounded sizes are stacked into one batched matrix product. With ``w = 2**n_p`` buckets of
roughly equal size this costs about ``n_t * L**2 / w`` scores instead of ``L**2``, plus
the rounding (on average about ``(1 + block_size / (2 * mean bucket size))**2``).

A pair that shares a bucket in several tables must enter the softmax once. Each pair is
therefore counted only in the first table where the two share a bucket: in table t, pairs
that already share a bucket in an earlier table are masked out. The tables' partial sums
(per-query maximum score, sum of exponentials and exponential-weighted values) are then
merged as in a streaming softmax, which gives the softmax over the union of allowed keys.
A query with no allowed key gets an all-zero output, and neither the output nor the
gradient can be NaN.

Each group gathers its slots from q, k and v and adds its results back, so no tensor of
n_t copies of q, k or v is allocated. The backward pass needs the exponentiated scores.
They are kept from the forward pass when they fit in ``max_kept_bytes``, and otherwise
recomputed group by group (as FlashAttention does). Memory is therefore linear in L plus
the kept scores, which grow as ``n_t * L**2 / w`` but never beyond ``max_kept_bytes``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from uamrn.nn.attention import masked_softmax
from uamrn.nn.lsh import lsh_attention_mask, lsh_buckets

__all__ = ["BucketPlan", "bucketed_lsh_attention", "plan_buckets"]

logger = logging.getLogger(__name__)

# Exponentiated scores up to this size are kept for the backward pass. Larger ones are
# recomputed, which caps the part of the memory that grows faster than L.
DEFAULT_MAX_KEPT_BYTES = 512 * 2**20

# Estimated fixed cost of one group, in score-widths (one score times d + d_v). A group
# costs about 1 ms in gathers, masks, index_add_ and Python calls over both passes, and a
# score-width about 0.044 ns. Both are estimates from development timings on the 2-core CPU
# named in docs/benchmarks.md, not figures of its tables. On other hardware the choice of
# block size may be off, never the result.
GROUP_COST = 2.2e7

# Unit ids are (row * n_t + table) * 2**n_p + bucket in int64, which leaves room for 2**31
# rows and tables at this n_p (the model config allows the same maximum).
MAX_HYPERPLANES = 32


@dataclass(frozen=True)
class BucketPlan:
    """Sizes of the blocked per-bucket layout for one call.

    Attributes:
        n_tables: n_t, hash tables.
        n_buckets: 2**n_p, buckets per table.
        block_size: Granularity to which each bucket's query and key counts are rounded up.
        n_groups: Batched matrix products per call (units of equal rounded sizes share one).
        max_queries: Largest number of queries in one bucket (over all rows and tables).
        max_keys: Largest number of keys in one bucket (over all rows and tables).
        mean_queries: Mean number of queries per bucket, L_q / n_buckets.
        mean_keys: Mean number of keys per bucket, L_k / n_buckets.
        padded_scores: Scores per row (batch x head) in the blocked layout: the sum over
            tables and buckets of rounded query count times rounded key count.
        even_scores: Scores per row if every bucket held exactly the mean counts,
            ``n_tables * L_q * L_k / n_buckets``.
        dense_scores: Scores per row in the dense form, ``L_q * L_k``.
    """

    n_tables: int
    n_buckets: int
    block_size: int
    n_groups: int
    max_queries: int
    max_keys: int
    mean_queries: float
    mean_keys: float
    padded_scores: float
    even_scores: float
    dense_scores: int

    @property
    def use_buckets(self) -> bool:
        """True when the blocked layout has fewer scores than the dense form."""
        return self.padded_scores < self.dense_scores


@dataclass(frozen=True)
class _Group:
    """Units with equal rounded sizes: slots [query_start, query_end) and [key_start, key_end)."""

    n_units: int
    query_slots: int
    key_slots: int
    query_start: int
    key_start: int

    @property
    def query_end(self) -> int:
        return self.query_start + self.n_units * self.query_slots

    @property
    def key_end(self) -> int:
        return self.key_start + self.n_units * self.key_slots


@dataclass(frozen=True)
class _Side:
    """Where the queries (or keys) of every unit sit in the blocked slot layout.

    Attributes:
        source: Long (S,): the flattened row in ``[0, N * L)`` each slot contains, ``N * L``
            for a padding slot. An element whose unit has no partner (a query bucket
            without keys, or the other way round) has no slot.
        gather: ``source`` with padding slots reading row 0, for ``index_select``.
        earlier_codes: Long (T - 1, S): the element's bucket in each earlier table, or a
            sentinel that matches nothing for later tables and padding slots.
    """

    source: Tensor
    gather: Tensor
    earlier_codes: Tensor


def _round_up(counts: Tensor, block_size: int) -> Tensor:
    return (counts + block_size - 1) // block_size * block_size


def _choose_block_size(query_counts: Tensor, key_counts: Tensor, width: int) -> int:
    """Pick the power-of-two block size with the lowest estimated cost for these buckets.

    Smaller blocks waste fewer scores on rounding, but give more distinct rounded sizes and
    so more batched products, each with a fixed overhead. The estimate counts a group as
    ``GROUP_COST`` score-widths, a figure measured on a 2-core CPU (bench/notes.md).

    Args:
        query_counts: Queries per unit (U,), only units with queries and keys.
        key_counts: Keys per unit (U,).
        width: d + d_v, the work per score.
    """
    if query_counts.numel() == 0:
        return 1
    best_size, best_cost = 1, math.inf
    largest = int(torch.maximum(query_counts, key_counts).max())
    size = 1
    while True:
        query_padded = _round_up(query_counts, size)
        key_padded = _round_up(key_counts, size)
        n_groups = torch.unique(query_padded * (int(key_padded.max()) + 1) + key_padded).numel()
        cost = float((query_padded * key_padded).sum()) * width + n_groups * GROUP_COST
        if cost < best_cost:
            best_size, best_cost = size, cost
        if size >= largest:
            return best_size
        size *= 2


def _hash(q: Tensor, k: Tensor, hyperplanes: Tensor) -> tuple[Tensor, Tensor]:
    """Bucket ids of queries and keys, flattened to (N, T, L) with N the leading dimensions."""
    query_buckets = lsh_buckets(q, hyperplanes)
    key_buckets = lsh_buckets(k, hyperplanes)
    n_tables = query_buckets.shape[-2]
    return (
        query_buckets.reshape(-1, n_tables, q.shape[-2]),
        key_buckets.reshape(-1, n_tables, k.shape[-2]),
    )


def _check_inputs(q: Tensor, k: Tensor, hyperplanes: Tensor, block_size: int | None) -> None:
    """Raise ValueError for hyperplanes or a block size that the bucketed form cannot use."""
    if hyperplanes.dim() < 3:
        raise ValueError(f"hyperplanes must be (..., n_t, d, n_p), got shape {tuple(hyperplanes.shape)}")
    if hyperplanes.shape[-1] > MAX_HYPERPLANES:
        raise ValueError(
            f"n_p = {hyperplanes.shape[-1]} hyperplanes per table is more than the bucketed form supports "
            f"({MAX_HYPERPLANES}, because unit ids combine row, table and bucket in one int64); use fewer"
        )
    try:
        leading = torch.broadcast_shapes(q.shape[:-2], hyperplanes.shape[:-3])
    except RuntimeError:
        leading = None
    if leading != q.shape[:-2]:
        raise ValueError(
            f"hyperplanes {tuple(hyperplanes.shape)} do not fit the leading dimensions of q {tuple(q.shape)}; "
            "give one set per head, (H, n_t, d, n_p) with H = q.shape[-3], or a single set (n_t, d, n_p)"
        )
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")


def _unit_ids(buckets: Tensor, n_buckets: int) -> Tensor:
    """Number every (row, table, bucket) unit: (N, T, L) bucket ids to (N, T, L) unit ids."""
    n_rows, n_tables, _ = buckets.shape
    offsets = torch.arange(n_rows * n_tables, device=buckets.device).view(n_rows, n_tables, 1) * n_buckets
    return buckets + offsets


def _place(
    units: Tensor, counts: Tensor, slot_start: Tensor, n_slots: int, buckets: Tensor, sentinel: int
) -> _Side:
    """Put each element of each active unit into its slot, in sequence order within the unit."""
    n_rows, n_tables, length = units.shape
    flat_units = units.reshape(-1)
    order = torch.argsort(flat_units, stable=True)
    unit_starts = torch.cumsum(counts, 0) - counts
    ranks = torch.empty_like(flat_units)
    ranks[order] = torch.arange(flat_units.numel(), device=units.device) - unit_starts[flat_units[order]]

    # slot_of[n, t, i]: the slot of element i of row n in table t, or -1 without a slot.
    start = slot_start[flat_units]
    slot_of = torch.where(start >= 0, start + ranks, torch.full_like(start, -1)).view(n_rows, n_tables, length)

    rows = torch.arange(n_rows * length, device=units.device).view(n_rows, 1, length).expand(n_rows, n_tables, length)
    placed = slot_of >= 0
    source = torch.full((n_slots,), n_rows * length, dtype=torch.long, device=units.device)
    source[slot_of[placed]] = rows[placed]

    # earlier_codes[e, s] is the bucket in table e of the element in slot s when e is earlier
    # than the slot's own table. Every other entry is the sentinel.
    codes = torch.full((max(n_tables - 1, 0), n_slots), sentinel, dtype=torch.long, device=units.device)
    tables = torch.arange(n_tables, device=units.device).view(1, n_tables, 1).expand_as(slot_of)
    for earlier in range(n_tables - 1):
        later = placed & (tables > earlier)
        element_code = buckets[:, earlier : earlier + 1, :].expand_as(slot_of)
        codes[earlier, slot_of[later]] = element_code[later]
    gather = torch.where(source < n_rows * length, source, torch.zeros_like(source))
    return _Side(source=source, gather=gather, earlier_codes=codes)


@dataclass(frozen=True)
class _Layout:
    plan: BucketPlan
    groups: list[_Group]
    queries: _Side
    keys: _Side
    key_is_padding: Tensor  # bool (S_k,)


def _build_layout(
    query_buckets: Tensor, key_buckets: Tensor, n_hyperplanes: int, block_size: int | None, width: int
) -> _Layout:
    """Group the (row, table, bucket) units by rounded size and lay their slots out contiguously."""
    n_buckets = 2**n_hyperplanes
    n_rows, n_tables, length_q = query_buckets.shape
    length_k = key_buckets.shape[-1]
    # Units are numbered densely over the occupied (row, table, bucket) triples only, so that
    # memory does not grow with 2**n_p.
    query_units = _unit_ids(query_buckets, n_buckets).reshape(-1)
    key_units = _unit_ids(key_buckets, n_buckets).reshape(-1)
    _, dense_ids = torch.unique(torch.cat([query_units, key_units]), return_inverse=True)
    n_units = int(dense_ids.max()) + 1 if dense_ids.numel() else 0
    query_units = dense_ids[: query_units.numel()].view(n_rows, n_tables, length_q)
    key_units = dense_ids[query_units.numel() :].view(n_rows, n_tables, length_k)
    query_counts = torch.bincount(query_units.reshape(-1), minlength=n_units)
    key_counts = torch.bincount(key_units.reshape(-1), minlength=n_units)

    # A unit without queries or without keys contributes no score.
    active = (query_counts > 0) & (key_counts > 0)
    if block_size is None:
        block_size = _choose_block_size(query_counts[active], key_counts[active], width)
    query_padded = _round_up(query_counts, block_size) * active
    key_padded = _round_up(key_counts, block_size) * active

    # Units sorted by (rounded queries, rounded keys); each run of equal sizes is one group.
    size_key = query_padded * ((int(key_padded.max()) if n_units else 0) + 1) + key_padded
    active_units = torch.nonzero(active).squeeze(1)
    active_units = active_units[torch.argsort(size_key[active_units], stable=True)]
    query_sizes = query_padded[active_units]
    key_sizes = key_padded[active_units]
    query_offsets = torch.cumsum(query_sizes, 0) - query_sizes
    key_offsets = torch.cumsum(key_sizes, 0) - key_sizes
    query_slot_start = torch.full((n_units,), -1, dtype=torch.long, device=query_units.device)
    key_slot_start = torch.full_like(query_slot_start, -1)
    query_slot_start[active_units] = query_offsets
    key_slot_start[active_units] = key_offsets

    groups = []
    _, run_lengths = torch.unique_consecutive(size_key[active_units], return_counts=True)
    first = 0
    for run in run_lengths.tolist():
        groups.append(
            _Group(
                n_units=run,
                query_slots=int(query_sizes[first]),
                key_slots=int(key_sizes[first]),
                query_start=int(query_offsets[first]),
                key_start=int(key_offsets[first]),
            )
        )
        first += run

    n_query_slots = int(query_sizes.sum())
    n_key_slots = int(key_sizes.sum())
    queries = _place(query_units, query_counts, query_slot_start, n_query_slots, query_buckets, sentinel=-1)
    keys = _place(key_units, key_counts, key_slot_start, n_key_slots, key_buckets, sentinel=-2)

    plan = BucketPlan(
        n_tables=n_tables,
        n_buckets=n_buckets,
        block_size=block_size,
        n_groups=len(groups),
        max_queries=int(query_counts.max()) if n_units else 0,
        max_keys=int(key_counts.max()) if n_units else 0,
        mean_queries=length_q / n_buckets,
        mean_keys=length_k / n_buckets,
        padded_scores=float((query_sizes * key_sizes).sum()) / max(n_rows, 1),
        even_scores=n_tables * length_q * length_k / n_buckets,
        dense_scores=length_q * length_k,
    )
    return _Layout(
        plan=plan,
        groups=groups,
        queries=queries,
        keys=keys,
        key_is_padding=keys.source == n_rows * length_k,
    )


def plan_buckets(q: Tensor, k: Tensor, hyperplanes: Tensor, *, block_size: int | None = None) -> BucketPlan:
    """Measure how evenly queries and keys fill the buckets, and the cost of the bucketed form.

    Args:
        q: Queries (..., L_q, d).
        k: Keys (..., L_k, d).
        hyperplanes: Normals (n_t, d, n_p), or with leading dimensions that broadcast
            against those of ``q`` (for example (H, n_t, d, n_p) for per-head tables).
        block_size: Rounding of bucket sizes. When None, the power of two with the lowest
            estimated cost for this call's buckets.

    Returns:
        The plan; ``max_queries / mean_queries`` is the unevenness of the query buckets.
    """
    _check_inputs(q, k, hyperplanes, block_size)
    with torch.no_grad():
        query_buckets, key_buckets = _hash(q, k, hyperplanes)
    return _build_layout(query_buckets, key_buckets, hyperplanes.shape[-1], block_size, 2 * q.shape[-1]).plan


def _dense_masked(q: Tensor, k: Tensor, v: Tensor, hyperplanes: Tensor, scale: float) -> Tensor:
    """Compute the dense masked form, for empty inputs and buckets too uneven to save work."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    return torch.matmul(masked_softmax(scores, lsh_attention_mask(q, k, hyperplanes)), v)


def _group_inputs(
    layout: _Layout, group: _Group, q_rows: Tensor, k_rows: Tensor, v_rows: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Gather one group's queries (G, query slots, d), keys (G, key slots, d) and values.

    Padding slots read row 0; the caller masks padding keys and drops padding queries.
    """
    queries = q_rows.index_select(0, layout.queries.gather[group.query_start : group.query_end])
    keys = k_rows.index_select(0, layout.keys.gather[group.key_start : group.key_end])
    values = v_rows.index_select(0, layout.keys.gather[group.key_start : group.key_end])
    return (
        queries.view(group.n_units, group.query_slots, -1),
        keys.view(group.n_units, group.key_slots, -1),
        values.view(group.n_units, group.key_slots, -1),
    )


def _group_scores(layout: _Layout, group: _Group, queries: Tensor, keys: Tensor) -> Tensor:
    """Compute the scores (G, query slots, key slots) of one group, -inf for pairs it does not count.

    A group does not count a pair when the key slot is padding, or when query and key
    already share a bucket in an earlier table (the earlier table counts it).
    """
    padding = layout.key_is_padding[group.key_start : group.key_end].view(group.n_units, 1, group.key_slots)
    bias = torch.zeros(padding.shape, dtype=queries.dtype, device=queries.device).masked_fill_(padding, -math.inf)
    scores = torch.baddbmm(bias, queries, keys.transpose(1, 2))

    query_codes = layout.queries.earlier_codes[:, group.query_start : group.query_end]
    key_codes = layout.keys.earlier_codes[:, group.key_start : group.key_end]
    for earlier in range(query_codes.shape[0]):
        shared = query_codes[earlier].view(group.n_units, group.query_slots, 1) == key_codes[earlier].view(
            group.n_units, 1, group.key_slots
        )
        scores.masked_fill_(shared, -math.inf)
    return scores


class _BucketedAttention(torch.autograd.Function):
    """Blocked bucketed attention on flattened (N * L, width) rows of q, k and v."""

    @staticmethod
    def forward(ctx, q_rows: Tensor, k_rows: Tensor, v_rows: Tensor, layout: _Layout, scale: float, keep_weights: bool):
        q_rows = q_rows * scale
        n_query_rows, width_v = q_rows.shape[0], v_rows.shape[-1]
        query_source = layout.queries.source

        # Pass 1, per group: each query slot's maximum score, sum of exponentials and
        # exponential-weighted values, relative to that maximum. A slot whose row has no
        # counted key keeps maximum -inf and sums zero.
        slot_max = q_rows.new_empty(query_source.shape[0])
        slot_sum = q_rows.new_empty(query_source.shape[0])
        group_values, kept_weights = [], []
        for group in layout.groups:
            rows_q = slice(group.query_start, group.query_end)
            queries, keys, values = _group_inputs(layout, group, q_rows, k_rows, v_rows)
            scores = _group_scores(layout, group, queries, keys)
            row_max = scores.amax(dim=-1)
            safe_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
            weights = scores.sub_(safe_max.unsqueeze(-1)).exp_()
            slot_max[rows_q] = row_max.reshape(-1)
            slot_sum[rows_q] = weights.sum(dim=-1).reshape(-1)
            group_values.append(torch.bmm(weights, values).view(-1, width_v))
            if keep_weights:
                kept_weights.append(weights)

        # Pass 2: merge each query's slots (one per table) against the query's overall
        # maximum. Padding slots add into the extra last row, which is dropped.
        row_max = q_rows.new_full((n_query_rows + 1,), -math.inf).scatter_reduce_(
            0, query_source, slot_max, reduce="amax"
        )
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        slot_weight = torch.exp(slot_max - row_max[query_source])
        total = q_rows.new_zeros(n_query_rows + 1).index_add_(0, query_source, slot_weight * slot_sum)
        numerator = q_rows.new_zeros(n_query_rows + 1, width_v)
        for group, values in zip(layout.groups, group_values):
            rows_q = slice(group.query_start, group.query_end)
            numerator.index_add_(0, query_source[rows_q], values.mul_(slot_weight[rows_q].unsqueeze(-1)))
        total, numerator, row_max = total[:-1], numerator[:-1], row_max[:-1]

        has_key = total > 0
        safe_total = torch.where(has_key, total, torch.ones_like(total))
        out = numerator.div_(safe_total.unsqueeze(-1))

        # Log-sum-exp of each query's allowed scores. A query without keys gets +inf, so that
        # exp(score - lse) is zero for it in the backward pass.
        log_sum_exp = torch.where(has_key, row_max + torch.log(safe_total), torch.full_like(total, math.inf))
        ctx.save_for_backward(q_rows, k_rows, v_rows, out, log_sum_exp, slot_max)
        ctx.layout = layout
        ctx.scale = scale
        ctx.kept_weights = kept_weights
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        q_rows, k_rows, v_rows, out, log_sum_exp, slot_max = ctx.saved_tensors
        layout: _Layout = ctx.layout
        kept_weights = ctx.kept_weights
        width_v = v_rows.shape[-1]

        # Standard softmax backward with the weights of the union, P = exp(score - lse):
        # dS = P * (dP - rowsum(dO * O)). A kept weight is exp(score - slot maximum), so it
        # is rescaled by exp(slot maximum - lse). Padding query slots read lse +inf (weight
        # zero) and add their gradient into the extra last row, which is dropped.
        grad_out = grad_out.contiguous()
        query_source, key_source = layout.queries.source, layout.keys.source
        delta_slots = torch.cat([(grad_out * out).sum(dim=-1), grad_out.new_zeros(1)])[query_source]
        lse_slots = torch.cat([log_sum_exp, log_sum_exp.new_full((1,), math.inf)])[query_source]
        if kept_weights:
            rescale = torch.exp(slot_max - lse_slots)

        grad_q = q_rows.new_zeros(q_rows.shape[0] + 1, q_rows.shape[-1])
        grad_k = k_rows.new_zeros(k_rows.shape[0] + 1, k_rows.shape[-1])
        grad_v = v_rows.new_zeros(v_rows.shape[0] + 1, width_v)
        for number, group in enumerate(layout.groups):
            rows_q = slice(group.query_start, group.query_end)
            rows_k = slice(group.key_start, group.key_end)
            units, n_q = group.n_units, group.query_slots
            queries, keys, values = _group_inputs(layout, group, q_rows, k_rows, v_rows)
            if kept_weights:
                weights = kept_weights[number] * rescale[rows_q].view(units, n_q, 1)
            else:
                weights = _group_scores(layout, group, queries, keys)
                weights.sub_(lse_slots[rows_q].view(units, n_q, 1)).exp_()

            upstream = grad_out.index_select(0, layout.queries.gather[rows_q]).view(units, n_q, width_v)
            grad_v.index_add_(0, key_source[rows_k], torch.bmm(weights.transpose(1, 2), upstream).view(-1, width_v))
            grad_scores = torch.bmm(upstream, values.transpose(1, 2))
            grad_scores.sub_(delta_slots[rows_q].view(units, n_q, 1)).mul_(weights)
            grad_q.index_add_(0, query_source[rows_q], torch.bmm(grad_scores, keys).flatten(0, 1))
            grad_k.index_add_(0, key_source[rows_k], torch.bmm(grad_scores.transpose(1, 2), queries).flatten(0, 1))

        return grad_q[:-1].mul_(ctx.scale), grad_k[:-1], grad_v[:-1], None, None, None


def bucketed_lsh_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    hyperplanes: Tensor,
    *,
    scale: float | None = None,
    dense_fallback: bool = True,
    block_size: int | None = None,
    max_kept_bytes: int = DEFAULT_MAX_KEPT_BYTES,
) -> Tensor:
    """Attend from each query to the keys that share a bucket with it in at least one hash table.

    Equal, up to float rounding, to a softmax over the allowed keys of the dense
    ``(L_q, L_k)`` score matrix masked by :func:`uamrn.nn.lsh.lsh_attention_mask`, followed
    by the product with ``v``. When the buckets are so uneven that the blocked layout would
    hold at least as many scores as the dense matrix, the dense masked form is computed
    instead (same result, quadratic memory).

    Args:
        q: Queries (..., L_q, d), for example (B, H, L, d_head).
        k: Keys (..., L_k, d), same leading dimensions as ``q``.
        v: Values (..., L_k, d_v), same leading dimensions as ``q``.
        hyperplanes: Normals (n_t, d, n_p), or with leading dimensions that broadcast
            against those of ``q`` (for example (H, n_t, d, n_p) for per-head tables).
        scale: Factor on the dot products; ``1 / sqrt(d)`` when None.
        dense_fallback: Compute the dense masked form when the blocked layout would not
            be smaller; False always uses the blocked layout (for tests).
        block_size: Rounding of bucket sizes. When None, the power of two with the lowest
            estimated cost for this call's buckets.
        max_kept_bytes: Keep the exponentiated scores from the forward pass for the
            backward pass when they need at most this many bytes; otherwise the backward
            pass recomputes them group by group (one more matrix product, linear memory).

    Returns:
        Attention output (..., L_q, d_v); all zeros for a query with no allowed key.
    """
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} do not fit together; "
            "expected q (..., L_q, d), k (..., L_k, d) and v (..., L_k, d_v)"
        )
    _check_inputs(q, k, hyperplanes, block_size)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])

    leading = q.shape[:-2]
    length_q, length_k, width_v = q.shape[-2], k.shape[-2], v.shape[-1]
    if q.numel() == 0 or k.numel() == 0:
        # The dense form handles empty shapes and keeps the autograd graph (zero gradients).
        return _dense_masked(q, k, v, hyperplanes, scale)

    with torch.no_grad():
        query_buckets, key_buckets = _hash(q, k, hyperplanes)
        layout = _build_layout(
            query_buckets, key_buckets, hyperplanes.shape[-1], block_size, q.shape[-1] + width_v
        )
    if dense_fallback and not layout.plan.use_buckets:
        logger.debug("buckets too uneven (%s); using the dense masked form", layout.plan)
        return _dense_masked(q, k, v, hyperplanes, scale)

    kept_bytes = layout.plan.padded_scores * query_buckets.shape[0] * q.element_size()
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    out = _BucketedAttention.apply(
        q.reshape(-1, q.shape[-1]),
        k.reshape(-1, k.shape[-1]),
        v.reshape(-1, width_v),
        layout,
        scale,
        needs_grad and kept_bytes <= max_kept_bytes,
    )
    return out.view(*leading, length_q, width_v)
