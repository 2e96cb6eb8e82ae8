"""The UAMRN model: frame features -> tokens -> SSA blocks -> logits, variance and gamma."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from uamrn.config import ModelConfig
from uamrn.nn.block import SSABlock
from uamrn.nn.dropout import MCDropout, mc_dropout_active
from uamrn.nn.head import UncertaintyHead
from uamrn.nn.position import SinusoidalPositionEncoding

__all__ = ["UAMRN", "UAMRNOutput", "sample_uncertainty"]

# Seed of the dropout masks of evaluation-time Monte-Carlo passes.
EVAL_MC_SEED = 0


@dataclass
class UAMRNOutput:
    """What one forward pass of :class:`UAMRN` returns.

    Attributes:
        logits: (B, C). Training mode: mean logits over the M Monte-Carlo passes.
            Evaluation mode: logits of one pass with dropout off.
        mc_logits: (M, B, C) logits of each Monte-Carlo dropout pass.
        variance: (B, C) aleatoric variance sigma^2, mean over the M passes.
        gamma: (B,) per-sample uncertainty, detached from the graph.
        attention: One (B, H, L, L) weight tensor per block, or None when not requested.
            In training mode it is the mean over the M passes.
    """

    logits: Tensor
    mc_logits: Tensor
    variance: Tensor
    gamma: Tensor
    attention: list[Tensor] | None = None


def sample_uncertainty(mc_logits: Tensor, variances: Tensor) -> Tensor:
    """Compute gamma, the per-sample uncertainty, detached.

    Per class, the epistemic part is the variance of the logits across passes,
    mean_m(y_m^2) - (mean_m y_m)^2, and the aleatoric part is the mean of sigma_m^2.
    Their sum is averaged over classes to give one number per sample.

    Args:
        mc_logits: (M, B, C) logits of the Monte-Carlo passes.
        variances: (M, B, C) sigma^2 of the same passes.

    Returns:
        (B,) non-negative tensor that does not require grad.
    """
    epistemic = mc_logits.var(dim=0, unbiased=False)
    aleatoric = variances.mean(dim=0)
    return (epistemic + aleatoric).mean(dim=-1).detach()


class UAMRN(nn.Module):
    """Uncertainty-aware magnification-robust network over a sequence of frame features.

    Each frame's feature vector is normalised and projected to one token of width
    d_model, a sinusoidal position encoding marks its place in the amplification-factor
    order, and ``n_blocks`` SSA blocks mix the tokens. An uncertainty head returns logits
    and a variance. Monte-Carlo dropout runs the M passes as one batched forward (the
    tokens repeated M times along the batch dimension).

    In evaluation mode the M passes draw their dropout masks from a generator seeded with
    a fixed value, one mask per pass shared by the whole batch, so gamma and
    ``mc_logits`` of a sample are the same for a given model file whatever batch it is in.

    Args:
        cfg: Model configuration.
        in_features: F, the width of each frame's feature vector.
        num_classes: C, the number of classes.
    """

    def __init__(self, cfg: ModelConfig, in_features: int, num_classes: int) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be positive, got {in_features}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")

        self.cfg = cfg
        self.in_features = in_features
        self.num_classes = num_classes

        self.input_norm = nn.LayerNorm(in_features)
        self.projection = nn.Linear(in_features, cfg.d_model)
        self.position = SinusoidalPositionEncoding()
        self.token_dropout = MCDropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            SSABlock(
                cfg.d_model,
                cfg.n_heads,
                n_hyperplanes=cfg.n_hyperplanes,
                n_tables=cfg.n_tables,
                attention=cfg.attention,
                attention_impl=cfg.attention_impl,
                redraw_hyperplanes=cfg.redraw_hyperplanes,
                dropout=cfg.dropout,
                mlp_ratio=cfg.mlp_ratio,
            )
            for _ in range(cfg.n_blocks)
        )
        self.head = UncertaintyHead(cfg.d_model, num_classes)

    @property
    def hparams(self) -> dict[str, Any]:
        """Everything :meth:`from_hparams` needs to rebuild this model (plain, YAML-safe values)."""
        return {
            "model": self.cfg.model_dump(mode="json"),
            "in_features": self.in_features,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_hparams(cls, hparams: dict[str, Any]) -> "UAMRN":
        """Rebuild an untrained model from :attr:`hparams`; load the weights separately."""
        try:
            cfg = ModelConfig.model_validate(hparams["model"])
            return cls(cfg, int(hparams["in_features"]), int(hparams["num_classes"]))
        except KeyError as err:
            raise ValueError(
                f"model hyper-parameters lack the key {err}; expected 'model', 'in_features' "
                "and 'num_classes' as written by UAMRN.hparams"
            ) from err

    def _embed(self, features: Tensor) -> Tensor:
        return self.position(self.projection(self.input_norm(features)))

    def _blocks_and_head(self, tokens: Tensor, return_attention: bool) -> tuple[Tensor, Tensor, list[Tensor]]:
        tokens = self.token_dropout(tokens)
        attention = []
        for block in self.blocks:
            tokens, weights = block(tokens, return_attention=return_attention)
            if weights is not None:
                attention.append(weights)
        logits, variance = self.head(tokens)
        return logits, variance, attention

    def forward(self, features: Tensor, return_attention: bool = False) -> UAMRNOutput:
        """Classify sequences of frame features.

        Args:
            features: (B, L, F) float tensor, one feature vector per magnified frame.
            return_attention: Also return each block's attention weights.

        Returns:
            :class:`UAMRNOutput` with logits (B, C), mc_logits (M, B, C), variance (B, C),
            gamma (B,) and, when asked, attention: a list of (B, H, L, L).
        """
        if features.dim() != 3 or features.shape[-1] != self.in_features:
            raise ValueError(
                f"features must have shape (batch, length, {self.in_features}), got "
                f"{tuple(features.shape)}; compute them with the front end this model was built for"
            )

        batch = features.shape[0]
        passes = self.cfg.mc_samples
        tokens = self._embed(features)
        repeated = tokens.repeat(passes, 1, 1)  # (M * B, L, D), pass-major

        if self.training:
            flat_logits, flat_variance, attention = self._blocks_and_head(repeated, return_attention)
            mc_logits = flat_logits.view(passes, batch, -1)
            logits = mc_logits.mean(dim=0)
            attention = [w.view(passes, batch, *w.shape[1:]).mean(dim=0) for w in attention]
        else:
            logits, _, attention = self._blocks_and_head(tokens, return_attention)
            generator = torch.Generator(device=features.device).manual_seed(EVAL_MC_SEED)
            with mc_dropout_active(self, generator, shared_passes=passes):
                flat_logits, flat_variance, _ = self._blocks_and_head(repeated, False)
            mc_logits = flat_logits.view(passes, batch, -1)

        variances = flat_variance.view(passes, batch, -1)
        return UAMRNOutput(
            logits=logits,
            mc_logits=mc_logits,
            variance=variances.mean(dim=0),
            gamma=sample_uncertainty(mc_logits, variances),
            attention=attention if return_attention else None,
        )
