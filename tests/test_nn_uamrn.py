"""The UAMRN model: shapes, batched Monte-Carlo dropout, determinism and the paper size."""

from __future__ import annotations

import time

import pytest
import torch

from uamrn.config import ModelConfig, cpu_model, paper_model
from uamrn.nn import UAMRN, sinusoidal_encoding
from uamrn.train.losses import uamrn_loss


def make_model(**overrides) -> UAMRN:
    torch.manual_seed(0)
    cfg = cpu_model().model_copy(update=overrides)
    return UAMRN(cfg, in_features=20, num_classes=3)


def test_output_shapes_train():
    model = make_model(mc_samples=5).train()
    output = model(torch.randn(4, 9, 20), return_attention=True)
    assert output.logits.shape == (4, 3)
    assert output.mc_logits.shape == (5, 4, 3)
    assert output.variance.shape == (4, 3)
    assert output.gamma.shape == (4,)
    assert len(output.attention) == 3
    assert output.attention[0].shape == (4, 2, 9, 9)


def test_train_logits_are_mc_mean():
    output = make_model().train()(torch.randn(3, 6, 20))
    assert torch.allclose(output.logits, output.mc_logits.mean(dim=0))


def test_train_passes_differ():
    output = make_model(dropout=0.3).train()(torch.randn(3, 6, 20))
    assert not torch.allclose(output.mc_logits[0], output.mc_logits[1])


def test_gamma_matches_definition():
    model = make_model().train()
    torch.manual_seed(5)
    output = model(torch.randn(3, 6, 20))
    y = output.mc_logits
    epistemic = (y.square().mean(dim=0) - y.mean(dim=0).square())
    expected = (epistemic + output.variance).mean(dim=-1)
    assert torch.allclose(output.gamma, expected, atol=1e-5)
    assert (output.gamma > 0).all()


def test_batched_mc_equals_looped():
    model = make_model(dropout=0.3, mc_samples=4).eval()
    features = torch.randn(2, 6, 20)
    batched = model(features).mc_logits

    # The same masks, applied one pass at a time: pass m uses the m-th mask of the seeded draw.
    tokens = model._embed(features)
    from uamrn.nn.dropout import mc_dropout_active

    generator = torch.Generator().manual_seed(0)
    with mc_dropout_active(model, generator, shared_passes=4):
        looped = model._blocks_and_head(tokens.repeat(4, 1, 1), False)[0].view(4, 2, 3)
    assert torch.allclose(batched, looped)


def test_eval_deterministic():
    model = make_model(dropout=0.3).eval()
    features = torch.randn(3, 6, 20)
    first = model(features)
    second = model(features)
    assert torch.equal(first.logits, second.logits)
    assert torch.equal(first.mc_logits, second.mc_logits)
    assert torch.equal(first.gamma, second.gamma)


def test_eval_independent_of_batch():
    model = make_model(dropout=0.3).eval()
    features = torch.randn(5, 6, 20)
    whole = model(features)
    part = model(features[2:4])
    assert torch.allclose(whole.gamma[2:4], part.gamma, atol=1e-6)
    assert torch.allclose(whole.mc_logits[:, 2:4], part.mc_logits, atol=1e-6)


def test_eval_logits_without_dropout():
    model = make_model(dropout=0.3).eval()
    features = torch.randn(2, 6, 20)
    output = model(features)
    clone = make_model(dropout=0.0).eval()
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(output.logits, clone(features).logits, atol=1e-6)
    assert not torch.allclose(output.logits, output.mc_logits.mean(dim=0))


def test_hparams_rebuild_same_outputs():
    model = make_model(attention="full", d_model=32).eval()
    rebuilt = UAMRN.from_hparams(model.hparams).eval()
    rebuilt.load_state_dict(model.state_dict())
    features = torch.randn(2, 6, 20)
    assert rebuilt.cfg == model.cfg
    assert torch.equal(rebuilt(features).logits, model(features).logits)


def test_hparams_missing_key_raises():
    with pytest.raises(ValueError, match="in_features"):
        UAMRN.from_hparams({"model": {}, "num_classes": 3})


def test_wrong_feature_width_raises():
    with pytest.raises(ValueError, match="20"):
        make_model()(torch.randn(2, 6, 21))


def test_training_step_lowers_loss():
    model = make_model(dropout=0.0, mc_samples=2, d_model=32, n_blocks=1)
    features = torch.randn(8, 6, 20)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = uamrn_loss(model(features), target, uncertainty=True)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_position_encoding_values():
    encoding = sinusoidal_encoding(4, 6)
    assert encoding.shape == (4, 6)
    assert torch.allclose(encoding[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(encoding[1, 0], torch.sin(torch.tensor(1.0)))


@pytest.mark.slow
def test_paper_size_forward_backward():
    torch.manual_seed(0)
    cfg = paper_model()
    model = UAMRN(cfg, in_features=2048, num_classes=5).train()
    features = torch.randn(8, 32, 2048)
    target = torch.randint(0, 5, (8,))

    start = time.perf_counter()
    output = model(features)
    loss = uamrn_loss(output, target, uncertainty=True)
    loss.backward()
    elapsed = time.perf_counter() - start

    assert cfg.d_model == 1024
    assert output.mc_logits.shape == (cfg.mc_samples, 8, 5)
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert elapsed < 120, f"paper-size forward+backward took {elapsed:.1f} s"
