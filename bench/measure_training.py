"""Section (b): training throughput of the paper-size model against the machine's matmul speed."""

from __future__ import annotations

import logging

import torch
from torch.utils.flop_counter import FlopCounterMode

from timing import best_time, matmul_flops

logger = logging.getLogger(__name__)


def _feature_width() -> tuple[int, str]:
    """Return the default front end's feature width and where it came from."""
    try:
        from uamrn.config import FrontEndConfig
        from uamrn.nn import build_frontend

        return build_frontend(FrontEndConfig()).feature_dim, "default front end (mini_xception)"
    except (ImportError, FileNotFoundError, ValueError) as err:
        logger.warning("default front end unavailable (%s); using 1024 input features", err)
        return 1024, "1024 (front end unavailable)"


def measure(*, batch: int = 4, steps: int = 3, quick: bool = False) -> dict:
    """Time Adam training steps of the paper-size UAMRN and count their FLOPs.

    Returns:
        Dict with the model settings, ``flops_per_step``, ``step_s``, ``achieved_flops``,
        ``matmul_flops`` and ``fraction`` (achieved over matmul FLOP/s).
    """
    from uamrn.config import paper_model
    from uamrn.nn import UAMRN
    from uamrn.train.losses import uamrn_loss

    cfg = paper_model()
    in_features, width_source = _feature_width()
    length = 32
    torch.manual_seed(0)
    model = UAMRN(cfg, in_features, 3)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    features = torch.randn(batch, length, in_features)
    targets = torch.randint(0, 3, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = uamrn_loss(model(features), targets, cfg.uncertainty)
        loss.backward()
        optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()

    steps = 1 if quick else steps
    step_s = best_time(step, repeats=steps, warmup=1)
    reference = matmul_flops(size=2048, repeats=2 if quick else 3)
    achieved = flops / step_s
    return {
        "d_model": cfg.d_model,
        "n_blocks": cfg.n_blocks,
        "n_heads": cfg.n_heads,
        "mc_samples": cfg.mc_samples,
        "attention_impl": cfg.attention_impl,
        "batch": batch,
        "length": length,
        "in_features": in_features,
        "in_features_source": width_source,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_step": flops,
        "step_s": step_s,
        "achieved_flops": achieved,
        "matmul_flops": reference,
        "fraction": achieved / reference,
        "threads": torch.get_num_threads(),
    }


def render(result: dict) -> str:
    return "\n".join([
        f"Paper-size UAMRN: d_model {result['d_model']}, {result['n_blocks']} SSA blocks, {result['n_heads']} heads, "
        f"M = {result['mc_samples']} Monte-Carlo passes batched, {result['parameters'] / 1e6:.1f} M parameters; "
        f"input batch {result['batch']} x L {result['length']} x {result['in_features']} features "
        f"({result['in_features_source']}); one Adam step with the uncertainty loss; {result['threads']} torch threads.",
        "FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` (matrix products only; element-wise work "
        "is not counted). The reference is the best time of a 2048 x 2048 fp32 `torch.matmul` in the same run.",
        "",
        "| FLOPs per step | step time | achieved | fp32 matmul | achieved / matmul |",
        "|---|---|---|---|---|",
        f"| {result['flops_per_step'] / 1e9:.1f} GFLOP | {result['step_s'] * 1000:.0f} ms "
        f"| {result['achieved_flops'] / 1e9:.1f} GFLOP/s | {result['matmul_flops'] / 1e9:.1f} GFLOP/s "
        f"| {result['fraction'] * 100:.0f} % |",
        "",
    ])


def targets(result: dict | None) -> list[tuple[str, str, bool | None]]:
    label = "training throughput >= 50 % of fp32 matmul FLOP/s"
    if not result:
        return [(label, "not measured", None)]
    return [(label, f"{result['fraction'] * 100:.0f} %", result["fraction"] >= 0.5)]
