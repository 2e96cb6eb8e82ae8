"""Bucketed LSH attention equals the dense masked form, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from uamrn.nn.attention import SparseSelfAttention, masked_softmax
from uamrn.nn.lsh import lsh_attention_mask, lsh_buckets
from uamrn.nn.lsh_bucketed import bucketed_lsh_attention, plan_buckets


def dense_reference(q, k, v, hyperplanes):
    """The dense masked form built from the model's own mask and masked softmax."""
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.matmul(masked_softmax(scores, lsh_attention_mask(q, k, hyperplanes)), v)


def loop_reference(q, k, v, hyperplanes):
    """Pair-by-pair softmax over the union of same-bucket keys, for one (L, d) row."""
    query_buckets = lsh_buckets(q, hyperplanes)  # (n_t, L)
    key_buckets = lsh_buckets(k, hyperplanes)
    out = torch.zeros(q.shape[0], v.shape[-1], dtype=q.dtype)
    for i in range(q.shape[0]):
        allowed = [j for j in range(k.shape[0]) if bool((query_buckets[:, i] == key_buckets[:, j]).any())]
        if not allowed:
            continue
        scores = torch.stack([q[i] @ k[j] for j in allowed]) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores, dim=0)
        out[i] = (weights[:, None] * v[allowed]).sum(dim=0)
    return out


def random_inputs(shape, width_v=None, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    *leading, length, width = shape
    q = torch.randn(*shape, generator=generator, dtype=dtype, requires_grad=True)
    k = torch.randn(*shape, generator=generator, dtype=dtype, requires_grad=True)
    v = torch.randn(*leading, length, width_v or width, generator=generator, dtype=dtype, requires_grad=True)
    return q, k, v


def grads(out, inputs, seed=1):
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, inputs, upstream)


CASES = [
    # (B, H, L, d, n_t, n_p, per-head hyperplanes)
    (2, 2, 32, 16, 4, 3, True),
    (1, 2, 100, 8, 3, 5, True),
    (3, 1, 64, 4, 1, 2, False),
    (2, 2, 300, 32, 4, 6, True),
    (1, 1, 17, 8, 2, 8, False),  # 256 buckets for 17 vectors: most buckets empty
]


@pytest.mark.parametrize("case", CASES, ids=[f"L{c[2]}-t{c[4]}-p{c[5]}" for c in CASES])
def test_bucketed_equals_dense(case):
    batch, heads, length, width, n_tables, n_hyperplanes, per_head = case
    q, k, v = random_inputs((batch, heads, length, width))
    shape = (heads, n_tables, width, n_hyperplanes) if per_head else (n_tables, width, n_hyperplanes)
    hyperplanes = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    want = dense_reference(q, k, v, hyperplanes)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)

    for got_grad, want_grad in zip(grads(got, (q, k, v)), grads(want, (q, k, v))):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


def test_bucketed_equals_pair_loop():
    q, k, v = random_inputs((1, 1, 40, 6), width_v=5, seed=3)
    hyperplanes = torch.randn(3, 6, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    want = loop_reference(q[0, 0], k[0, 0], v[0, 0], hyperplanes)
    torch.testing.assert_close(got[0, 0], want, rtol=1e-10, atol=1e-12)


def test_bucketed_counts_shared_pairs_once():
    # Identical tables put every same-bucket pair in all four tables at once.
    q, k, v = random_inputs((2, 2, 50, 8), seed=5)
    one_table = torch.randn(1, 8, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    hyperplanes = one_table.expand(4, 8, 2).contiguous()
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-10, atol=1e-12)


def test_bucketed_query_without_keys_is_zero():
    # One hyperplane along the first axis: queries 0..4 on its positive side, all keys on the negative.
    q, k, v = random_inputs((1, 1, 10, 4), seed=7)
    with torch.no_grad():
        q[..., :5, 0] = q[..., :5, 0].abs() + 1.0
        q[..., 5:, 0] = -(q[..., 5:, 0].abs() + 1.0)
        k[..., 0] = -(k[..., 0].abs() + 1.0)
    hyperplanes = torch.zeros(1, 4, 1, dtype=torch.float64)
    hyperplanes[0, 0, 0] = 1.0

    out = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    q_grad, k_grad, v_grad = grads(out, (q, k, v))

    assert torch.equal(out[..., :5, :], torch.zeros_like(out[..., :5, :]))
    assert out[..., 5:, :].abs().sum() > 0
    assert torch.isfinite(q_grad).all()
    assert torch.isfinite(k_grad).all()
    assert torch.isfinite(v_grad).all()
    assert torch.equal(q_grad[..., :5, :], torch.zeros_like(q_grad[..., :5, :]))


def test_bucketed_no_query_has_keys():
    q, k, v = random_inputs((2, 1, 6, 3), seed=8)
    with torch.no_grad():
        q[..., 0] = q[..., 0].abs() + 1.0
        k[..., 0] = -(k[..., 0].abs() + 1.0)
    hyperplanes = torch.zeros(2, 3, 1, dtype=torch.float64)
    hyperplanes[:, 0, 0] = 1.0

    out = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    q_grad, k_grad, v_grad = grads(out, (q, k, v))

    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(q_grad, torch.zeros_like(q_grad))
    assert torch.equal(k_grad, torch.zeros_like(k_grad))
    assert torch.equal(v_grad, torch.zeros_like(v_grad))


def test_bucketed_float32_close():
    q, k, v = random_inputs((2, 2, 200, 16), dtype=torch.float32, seed=9)
    hyperplanes = torch.randn(2, 4, 16, 3, generator=torch.Generator().manual_seed(10))
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-4, atol=1e-5)


def test_bucketed_large_scores_stable():
    # Scores of several hundred would overflow exp() without the per-table maximum.
    q, k, v = random_inputs((1, 2, 64, 8), seed=11)
    with torch.no_grad():
        q.mul_(30.0)
        k.mul_(30.0)
    hyperplanes = torch.randn(2, 3, 8, 2, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-10, atol=1e-12)


def test_bucketed_uneven_falls_back_exactly():
    # Every vector in the same bucket: the padded layout would be n_t * 2**n_p times the dense one.
    q, k, v = random_inputs((1, 2, 30, 4), seed=13)
    with torch.no_grad():
        q[..., 0] = q[..., 0].abs() + 1.0
        k[..., 0] = k[..., 0].abs() + 1.0
    hyperplanes = torch.zeros(2, 4, 3, dtype=torch.float64)
    hyperplanes[:, 0, :] = 1.0
    hyperplanes[:, 1:, :] = 1e-3

    plan = plan_buckets(q, k, hyperplanes)
    assert not plan.use_buckets
    got = bucketed_lsh_attention(q, k, v, hyperplanes)
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-10, atol=1e-12)


def test_plan_below_quadratic():
    q, k, _ = random_inputs((1, 2, 2048, 64), dtype=torch.float32, seed=14)
    hyperplanes = torch.randn(2, 4, 64, 6, generator=torch.Generator().manual_seed(15))
    plan = plan_buckets(q, k, hyperplanes)
    assert plan.use_buckets
    assert plan.padded_scores * 2 < plan.dense_scores
    assert plan.max_queries >= plan.mean_queries


def test_bucketed_rejects_mismatched_shapes():
    q, k, v = random_inputs((1, 1, 8, 4))
    hyperplanes = torch.randn(2, 4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="do not fit together"):
        bucketed_lsh_attention(q, k[..., :3], v, hyperplanes)


def test_attention_module_bucketed_equals_dense():
    torch.manual_seed(16)
    module = SparseSelfAttention(d_model=32, n_heads=2, n_hyperplanes=3, n_tables=4, attention_impl="dense")
    module.eval()
    tokens = torch.randn(3, 48, 32, requires_grad=True)

    dense_out, _ = module(tokens)
    module.attention_impl = "bucketed"
    bucketed_out, _ = module(tokens)

    torch.testing.assert_close(bucketed_out, dense_out, rtol=1e-4, atol=1e-5)
    dense_grad = torch.autograd.grad(dense_out.sum(), tokens)[0]
    bucketed_grad = torch.autograd.grad(bucketed_out.sum(), tokens)[0]
    torch.testing.assert_close(bucketed_grad, dense_grad, rtol=1e-4, atol=1e-5)


def test_bucketed_recomputed_weights_equal_kept():
    # max_kept_bytes=0 makes the backward pass recompute every group's scores.
    q, k, v = random_inputs((2, 2, 90, 8), seed=17)
    hyperplanes = torch.randn(2, 3, 8, 2, generator=torch.Generator().manual_seed(18), dtype=torch.float64)
    reused = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    recomputed = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False, max_kept_bytes=0)
    torch.testing.assert_close(recomputed, reused, rtol=1e-12, atol=1e-14)
    for got_grad, want_grad in zip(grads(recomputed, (q, k, v)), grads(reused, (q, k, v))):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 3, 16, 128])
def test_bucketed_any_block_size_equals_dense(block_size):
    q, k, v = random_inputs((1, 2, 120, 8), seed=19)
    hyperplanes = torch.randn(2, 4, 8, 3, generator=torch.Generator().manual_seed(20), dtype=torch.float64)
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False, block_size=block_size)
    want = dense_reference(q, k, v, hyperplanes)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for got_grad, want_grad in zip(grads(got, (q, k, v)), grads(want, (q, k, v))):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-12)


def test_bucketed_rejects_block_size_zero():
    q, k, v = random_inputs((1, 1, 8, 4))
    with pytest.raises(ValueError, match="block_size"):
        bucketed_lsh_attention(q, k, v, torch.randn(2, 4, 3, dtype=torch.float64), block_size=0)


def _saved_elements(out):
    """Elements the autograd graph of ``out`` keeps for the attention's backward pass."""
    function = out.grad_fn
    while not hasattr(function, "saved_tensors"):
        function = function.next_functions[0][0]
    kept = sum(weights.numel() for weights in function.kept_weights)
    return sum(tensor.numel() for tensor in function.saved_tensors) + kept


def test_bucketed_memory_linear_without_kept_weights():
    # At L = 2048 the dense form keeps L^2 = 4.2 M scores per row. The recomputing form keeps
    # q, k, v, the output and per-slot statistics, a few times L * d.
    length, width = 2048, 8
    q, k, v = random_inputs((1, 1, length, width), dtype=torch.float32, seed=21)
    hyperplanes = torch.randn(1, 4, width, 3, generator=torch.Generator().manual_seed(22))
    recomputing = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False, max_kept_bytes=0)
    reusing = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)

    assert _saved_elements(recomputing) < 10 * length * width
    assert _saved_elements(reusing) > length * length / 4  # the kept weights: about n_t / 2**n_p of L^2


def test_plan_close_to_even_buckets():
    # Blocks round each bucket up by less than one block, not up to the largest bucket.
    q, k, _ = random_inputs((1, 2, 4096, 64), dtype=torch.float32, seed=23)
    hyperplanes = torch.randn(2, 4, 64, 3, generator=torch.Generator().manual_seed(24))
    plan = plan_buckets(q, k, hyperplanes)
    assert plan.max_queries > 1.05 * plan.mean_queries  # the buckets are uneven
    assert plan.padded_scores < 1.15 * plan.even_scores
    assert plan.block_size & (plan.block_size - 1) == 0
    assert plan.n_groups >= 1


def test_bucketed_backward_twice_with_retained_graph():
    q, k, v = random_inputs((1, 2, 60, 8), seed=25)
    hyperplanes = torch.randn(2, 4, 8, 2, generator=torch.Generator().manual_seed(26), dtype=torch.float64)
    out = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    first = torch.autograd.grad(out.sum(), (q, k, v), retain_graph=True)
    second = torch.autograd.grad(out.sum(), (q, k, v))
    for first_grad, second_grad in zip(first, second):
        torch.testing.assert_close(second_grad, first_grad, rtol=0, atol=0)


@pytest.mark.parametrize("fallback", [True, False])
def test_bucketed_empty_batch(fallback):
    q, k, v = random_inputs((0, 5, 4))
    out = bucketed_lsh_attention(q, k, v, torch.randn(2, 4, 3, dtype=torch.float64), dense_fallback=fallback)
    assert out.shape == (0, 5, 4)


def test_plan_empty_batch():
    plan = plan_buckets(torch.randn(0, 5, 4), torch.randn(0, 5, 4), torch.randn(2, 4, 3))
    assert plan.n_groups == 0


def test_bucketed_no_keys_keeps_graph():
    q = torch.randn(2, 5, 4, requires_grad=True)
    k = torch.randn(2, 0, 4, requires_grad=True)
    v = torch.randn(2, 0, 3, requires_grad=True)
    out = bucketed_lsh_attention(q, k, v, torch.randn(2, 4, 3))
    out.sum().backward()
    assert out.shape == (2, 5, 3)
    assert torch.equal(q.grad, torch.zeros_like(q))


def test_bucketed_rejects_widening_hyperplanes():
    # Three per-head sets for one head would silently triple the rows.
    q, k, v = random_inputs((2, 1, 25, 8))
    hyperplanes = torch.randn(3, 4, 8, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="do not fit the leading dimensions"):
        bucketed_lsh_attention(q, k, v, hyperplanes)


def test_bucketed_rejects_more_heads_in_hyperplanes():
    q, k, v = random_inputs((1, 2, 10, 8))
    with pytest.raises(ValueError, match="do not fit the leading dimensions"):
        bucketed_lsh_attention(q, k, v, torch.randn(4, 4, 8, 3, dtype=torch.float64))


def test_bucketed_checks_inputs_before_empty_shortcut():
    q, k, v = random_inputs((1, 1, 6, 8))
    with pytest.raises(ValueError, match="do not fit the leading dimensions"):
        bucketed_lsh_attention(q, k[..., :0, :], v[..., :0, :], torch.randn(4, 4, 8, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="block_size"):
        bucketed_lsh_attention(q, k[..., :0, :], v[..., :0, :], torch.randn(4, 8, 3, dtype=torch.float64), block_size=0)


def test_bucketed_rejects_too_many_hyperplanes():
    q, k, v = random_inputs((1, 2, 10, 8))
    with pytest.raises(ValueError, match="n_p = 33"):
        bucketed_lsh_attention(q, k, v, torch.randn(2, 3, 8, 33, dtype=torch.float64))


def test_bucketed_32_hyperplanes_equals_dense():
    # Keys near the queries share buckets even with 2**32 buckets per table.
    q, k, v = random_inputs((1, 2, 40, 6), seed=29)
    with torch.no_grad():
        k.copy_(q + 0.05 * torch.randn(q.shape, generator=torch.Generator().manual_seed(30), dtype=q.dtype))
    hyperplanes = torch.randn(2, 3, 6, 32, generator=torch.Generator().manual_seed(31), dtype=torch.float64)
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-10, atol=1e-12)


def test_plan_rejects_block_size_zero():
    with pytest.raises(ValueError, match="block_size"):
        plan_buckets(torch.randn(2, 20, 8), torch.randn(2, 20, 8), torch.randn(4, 8, 3), block_size=0)


def test_bucketed_many_hyperplanes_equals_dense():
    # 2**24 buckets per table: units are numbered over occupied buckets only.
    q, k, v = random_inputs((4, 2, 32, 8), seed=27)
    hyperplanes = torch.randn(2, 4, 8, 24, generator=torch.Generator().manual_seed(28), dtype=torch.float64)
    plan = plan_buckets(q, k, hyperplanes)
    got = bucketed_lsh_attention(q, k, v, hyperplanes, dense_fallback=False)
    assert plan.n_groups <= 4 * 2 * 4 * 32
    torch.testing.assert_close(got, dense_reference(q, k, v, hyperplanes), rtol=1e-10, atol=1e-12)
