"""Sparse (LSH) and full self-attention: masking, empty rows, the full switch and dispatch."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from uamrn.nn import SparseSelfAttention, lsh_attention_mask, masked_softmax


def make_attention(attention: str = "sparse", **kwargs) -> SparseSelfAttention:
    torch.manual_seed(0)
    options = dict(d_model=16, n_heads=2, n_hyperplanes=3, n_tables=4, attention=attention)
    options.update(kwargs)
    return SparseSelfAttention(**options).double()


def test_masked_softmax_all_allowed_equals_softmax():
    scores = torch.randn(3, 5, 5, dtype=torch.float64)
    weights = masked_softmax(scores, torch.ones(3, 5, 5, dtype=torch.bool))
    assert torch.allclose(weights, torch.softmax(scores, dim=-1), atol=1e-12)


def test_masked_softmax_ignores_masked_scores():
    scores = torch.tensor([[1.0, 1e30, 2.0, -1e30]])
    mask = torch.tensor([[True, False, True, False]])
    weights = masked_softmax(scores, mask)
    expected = torch.softmax(torch.tensor([1.0, 2.0]), dim=-1)
    assert torch.allclose(weights[0, [0, 2]], expected)
    assert weights[0, 1] == 0
    assert weights[0, 3] == 0


def test_masked_softmax_empty_row_safe():
    scores = (torch.randn(4, 6) * 1e3).requires_grad_()
    mask = torch.rand(4, 6) > 0.5
    mask[2] = False
    mask[0, 0] = True
    weights = masked_softmax(scores, mask)
    (weights * torch.randn(4, 6)).sum().backward()
    assert torch.equal(weights[2], torch.zeros(6))
    assert torch.isfinite(weights).all()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[2], torch.zeros(6))


def test_one_bucket_equals_full_attention():
    sparse = make_attention("sparse")
    full = make_attention("full")
    full.load_state_dict(sparse.state_dict())
    sparse.hyperplanes.zero_()  # every dot product is 0, so every vector lands in bucket 0
    x = torch.randn(3, 10, 16, dtype=torch.float64)

    sparse_out, sparse_weights = sparse(x, return_attention=True)
    full_out, full_weights = full(x, return_attention=True)

    assert torch.allclose(sparse_out, full_out, atol=1e-12)
    assert torch.allclose(sparse_weights, full_weights, atol=1e-12)


def test_full_switch_same_parameters():
    sparse = make_attention("sparse")
    full = make_attention("full")
    assert sparse.state_dict().keys() == full.state_dict().keys()
    full.load_state_dict(sparse.state_dict())  # strict by default


def test_keyless_query_zero_and_finite():
    torch.manual_seed(3)
    attention = SparseSelfAttention(8, 1, n_hyperplanes=4, n_tables=1).double()
    x = torch.randn(2, 32, 8, dtype=torch.float64, requires_grad=True)

    q = attention._split_heads(attention.query(x))
    k = attention._split_heads(attention.key(x))
    mask = lsh_attention_mask(q, k, attention.hyperplanes)[:, 0]  # (B, L, L), one head
    empty = ~mask.any(dim=-1)
    assert empty.any(), "test input should contain a query that shares no bucket with any key"
    assert (~empty).any()

    output, weights = attention(x, return_attention=True)
    (output.square().sum() + weights.sum()).backward()

    assert torch.equal(output[empty], torch.zeros_like(output[empty]))
    assert (output[~empty].abs().sum(dim=-1) > 0).all()
    assert torch.isfinite(output).all()
    assert torch.isfinite(x.grad).all()
    for name, parameter in attention.named_parameters():
        assert torch.isfinite(parameter.grad).all(), name


def test_weights_rows_sum_to_one_or_zero():
    attention = make_attention("sparse")
    _, weights = attention(torch.randn(4, 20, 16, dtype=torch.float64), return_attention=True)
    sums = weights.sum(dim=-1)
    assert weights.shape == (4, 2, 20, 20)
    assert torch.all(((sums - 1).abs() < 1e-9) | (sums == 0))


def test_weights_not_returned_by_default():
    _, weights = make_attention()(torch.randn(1, 5, 16, dtype=torch.float64))
    assert weights is None


def test_hyperplanes_saved_and_fixed():
    attention = make_attention(redraw_hyperplanes=False)
    before = attention.hyperplanes.clone()
    attention.train()
    attention(torch.randn(2, 8, 16, dtype=torch.float64))
    assert "hyperplanes" in attention.state_dict()
    assert attention.hyperplanes.shape == (2, 4, 8, 3)
    assert torch.equal(attention.hyperplanes, before)


def test_redraw_changes_training_not_eval():
    attention = make_attention(redraw_hyperplanes=True)
    x = torch.randn(2, 24, 16, dtype=torch.float64)

    attention.train()
    _, first = attention(x, return_attention=True)
    _, second = attention(x, return_attention=True)
    assert not torch.equal(first, second)

    attention.eval()
    _, eval_first = attention(x, return_attention=True)
    _, eval_second = attention(x, return_attention=True)
    assert torch.equal(eval_first, eval_second)


def test_bucketed_dispatch(monkeypatch):
    calls = []

    def fake_bucketed(q, k, v, hyperplanes):
        calls.append((q.shape, hyperplanes.shape))
        return torch.zeros_like(v)

    module = types.ModuleType("uamrn.nn.lsh_bucketed")
    module.bucketed_lsh_attention = fake_bucketed
    monkeypatch.setitem(sys.modules, "uamrn.nn.lsh_bucketed", module)

    x = torch.randn(1, 6, 16, dtype=torch.float64)
    make_attention(attention_impl="bucketed")(x)
    assert calls == [(torch.Size([1, 2, 6, 8]), torch.Size([2, 4, 8, 3]))]

    make_attention(attention_impl="auto")(x)  # short sequence: dense form
    assert len(calls) == 1

    make_attention(attention="full", attention_impl="bucketed")(x)
    assert len(calls) == 1


def test_bucketed_missing_falls_back_to_dense(monkeypatch):
    monkeypatch.setitem(sys.modules, "uamrn.nn.lsh_bucketed", None)  # import raises ImportError
    attention = make_attention(attention_impl="bucketed")
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    dense = make_attention(attention_impl="dense")
    assert torch.allclose(attention(x)[0], dense(x)[0])


def test_invalid_heads_raise():
    with pytest.raises(ValueError, match="divisible"):
        SparseSelfAttention(10, 3)


def test_bucketed_module_matches_dense():
    pytest.importorskip("uamrn.nn.lsh_bucketed")
    bucketed = make_attention(attention_impl="bucketed")
    dense = make_attention(attention_impl="dense")
    dense.load_state_dict(bucketed.state_dict())
    x = torch.randn(3, 40, 16, dtype=torch.float64)
    assert torch.allclose(bucketed(x)[0], dense(x)[0], atol=1e-10)
