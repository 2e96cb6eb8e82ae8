"""LSH bucketing and the same-bucket mask, against a brute-force reference."""

from __future__ import annotations

import itertools

import pytest
import torch

from uamrn.nn import draw_hyperplanes, lsh_attention_mask, lsh_buckets


def reference_mask(q: torch.Tensor, k: torch.Tensor, hyperplanes: torch.Tensor) -> torch.Tensor:
    """Mask for one (L, d) query/key pair, by explicit loops over tables and sign patterns."""
    n_tables, _, n_p = hyperplanes.shape
    mask = torch.zeros(q.shape[0], k.shape[0], dtype=torch.bool)
    for table in range(n_tables):
        for pattern in itertools.product([False, True], repeat=n_p):
            in_bucket_q = [
                i for i in range(q.shape[0])
                if all((float(q[i] @ hyperplanes[table, :, p]) > 0) == pattern[p] for p in range(n_p))
            ]
            in_bucket_k = [
                j for j in range(k.shape[0])
                if all((float(k[j] @ hyperplanes[table, :, p]) > 0) == pattern[p] for p in range(n_p))
            ]
            for i in in_bucket_q:
                for j in in_bucket_k:
                    mask[i, j] = True
    return mask


@pytest.mark.parametrize(
    "batch_shape, length, dim, n_tables, n_p",
    [((), 7, 4, 1, 1), ((3,), 16, 8, 4, 3), ((2, 2), 9, 5, 2, 2), ((1,), 32, 16, 3, 4)],
)
def test_mask_matches_reference(batch_shape, length, dim, n_tables, n_p):
    generator = torch.Generator().manual_seed(length * 100 + dim)
    q = torch.randn(*batch_shape, length, dim, generator=generator, dtype=torch.float64)
    k = torch.randn(*batch_shape, length, dim, generator=generator, dtype=torch.float64)
    hyperplanes = torch.randn(n_tables, dim, n_p, generator=generator, dtype=torch.float64)

    mask = lsh_attention_mask(q, k, hyperplanes)

    assert mask.shape == (*batch_shape, length, length)
    assert mask.dtype == torch.bool
    flat_q = q.reshape(-1, length, dim)
    flat_k = k.reshape(-1, length, dim)
    flat_mask = mask.reshape(-1, length, length)
    for index in range(flat_q.shape[0]):
        expected = reference_mask(flat_q[index], flat_k[index], hyperplanes)
        assert torch.equal(flat_mask[index], expected), f"batch element {index} differs"


def test_mask_is_sparse_and_not_empty():
    generator = torch.Generator().manual_seed(1)
    q = torch.randn(64, 8, generator=generator)
    hyperplanes = torch.randn(1, 8, 3, generator=generator)
    mask = lsh_attention_mask(q, q, hyperplanes)
    assert mask.diagonal().all()
    assert 0 < mask.float().mean() < 0.6


def test_buckets_shape_and_range():
    x = torch.randn(2, 5, 10, 6)
    hyperplanes = draw_hyperplanes(4, 6, 3)
    buckets = lsh_buckets(x, hyperplanes)
    assert buckets.shape == (2, 5, 4, 10)
    assert buckets.dtype == torch.long
    assert buckets.min() >= 0
    assert buckets.max() < 8


def test_buckets_sign_bits():
    hyperplanes = torch.eye(3).unsqueeze(0)  # one table, hyperplane p = axis p
    x = torch.tensor([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    assert lsh_buckets(x, hyperplanes).tolist() == [[0b101, 0b110, 0]]


def test_buckets_per_head_hyperplanes():
    x = torch.randn(2, 3, 10, 4)  # (B, H, L, d)
    hyperplanes = draw_hyperplanes(5, 4, 2, n_heads=3)  # (H, n_t, d, n_p)
    buckets = lsh_buckets(x, hyperplanes)
    assert buckets.shape == (2, 3, 5, 10)
    assert torch.equal(buckets[1, 2], lsh_buckets(x[1, 2], hyperplanes[2]))


def test_buckets_width_mismatch_raises():
    with pytest.raises(ValueError, match="width"):
        lsh_buckets(torch.randn(4, 5), torch.randn(2, 6, 3))
