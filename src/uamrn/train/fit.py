"""The training recipe: Adam, a step learning-rate schedule, the model kept after the last epoch.

Nothing here looks at test data. A model is trained for ``cfg.train.epochs`` epochs and
returned as it is at the end, which is the only honest choice under LOSO: picking an epoch
by its score on the test subject inflates the result.
"""

from __future__ import annotations

import logging
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from uamrn.config import RunConfig
from uamrn.train.features import standardize_features

__all__ = ["Prediction", "TrainedModel", "derive_seed", "predict", "train_model"]

logger = logging.getLogger(__name__)


def derive_seed(base_seed: int, name: str) -> int:
    """Return a 31-bit seed from the run seed and a name (a test subject, or ``final``).

    CRC-32 is stable across processes and Python versions, unlike ``hash``, so a single
    fold rerun on its own gets the same seed as in the full run.
    """
    return zlib.crc32(f"{base_seed}:{name}".encode()) & 0x7FFFFFFF


@contextmanager
def _deterministic(seed: int, threads: int):
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


@dataclass
class TrainedModel:
    """A model after its last epoch and the standardisation of its training features.

    Attributes:
        model: The network, in eval mode.
        feature_mean: ``(F,)`` float32 training-feature mean.
        feature_std: ``(F,)`` float32 training-feature std.
        losses: Mean training loss of each epoch.
        train_s: Seconds spent training.
        seed: The seed the training ran with.
    """

    model: torch.nn.Module
    feature_mean: np.ndarray
    feature_std: np.ndarray
    losses: list[float] = field(default_factory=list)
    train_s: float = 0.0
    seed: int = 0


@dataclass
class Prediction:
    """Per-sample outputs of a trained model.

    Attributes:
        probabilities: ``(N, C)`` softmax of the logits.
        labels: ``(N,)`` predicted class index (argmax).
        gamma: ``(N,)`` per-sample uncertainty.
    """

    probabilities: np.ndarray
    labels: np.ndarray
    gamma: np.ndarray


def train_model(features: np.ndarray, labels: np.ndarray, cfg: RunConfig, num_classes: int, seed: int) -> TrainedModel:
    """Train a fresh UAMRN on standardised features with the configured recipe.

    Args:
        features: ``(N, L, F)`` float32 training features (not yet standardised).
        labels: ``(N,)`` int class indices.
        cfg: Run config; ``model`` sizes the network, ``train`` sets the recipe.
        num_classes: C, the number of output classes.
        seed: Seed for initialisation, dropout, hashing and batch order.

    Returns:
        The model after the last epoch, in eval mode, with its standardisation.
    """
    from uamrn.nn import UAMRN
    from uamrn.train.losses import uamrn_loss

    train = cfg.train
    mean, std = standardize_features(features)
    inputs = torch.from_numpy((features - mean) / std).float()
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    start = time.perf_counter()
    losses = []
    with _deterministic(seed, train.threads):
        model = UAMRN(cfg.model, inputs.shape[-1], num_classes)
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, betas=train.betas, weight_decay=train.weight_decay)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=train.lr_step, gamma=train.lr_decay)
        order = torch.Generator().manual_seed(seed)

        model.train()
        for _ in tqdm(range(train.epochs), desc="epochs", unit="epoch", leave=False):
            epoch_loss, seen = 0.0, 0
            for batch in torch.randperm(len(inputs), generator=order).split(train.batch_size):
                output = model(inputs[batch])
                loss = uamrn_loss(output, targets[batch], cfg.model.uncertainty)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                epoch_loss += float(loss.detach()) * len(batch)
                seen += len(batch)
            scheduler.step()
            losses.append(epoch_loss / seen)
        model.eval()

    train_s = time.perf_counter() - start
    logger.debug("trained %d epochs in %.1f s, last loss %.4f", train.epochs, train_s, losses[-1])
    return TrainedModel(model=model, feature_mean=mean, feature_std=std, losses=losses, train_s=train_s, seed=seed)


@torch.no_grad()
def predict(model: torch.nn.Module, features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Prediction:
    """Run a trained model in eval mode on ``(N, L, F)`` raw features, standardised with ``mean`` and ``std``."""
    model.eval()
    inputs = torch.from_numpy((features - mean) / std).float()
    output = model(inputs)
    probabilities = torch.softmax(output.logits, dim=-1).numpy()
    return Prediction(
        probabilities=probabilities,
        labels=probabilities.argmax(axis=1),
        gamma=output.gamma.numpy(),
    )
