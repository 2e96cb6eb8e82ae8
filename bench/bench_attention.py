"""Time sparse (SSA) and full attention against PyTorch SDPA, and batched vs looped MC dropout.

    python bench/bench_attention.py --output docs/bench-attention.md

Every figure is forward + backward on the CPU, the median of ``torch.utils.benchmark``
measurements of this process's CPU time (``time.process_time``) with one torch thread by
default: on a shared machine wall time would also count the other jobs. Section 1 times the attention core only (scores, softmax, weighted sum)
on queries, keys and values of shape (B, H, L, d_head) with L = 32 and d_model = 1024;
the SSA time includes hashing and the mask. Section 2 times the whole paper-size UAMRN
(d_model 1024, 3 blocks) with M = 8 Monte-Carlo passes, once as one batched forward
and once as a Python loop of M forwards.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from timing import cpu_model

from uamrn.config import paper_model
from uamrn.nn import UAMRN, lsh_attention_mask, masked_softmax
from uamrn.nn.lsh import draw_hyperplanes


def median_ms(fn, min_run_time: float) -> float:
    """Return the median CPU time of ``fn()`` in milliseconds."""
    timer = benchmark.Timer(
        stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=time.process_time
    )
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def attention_rows(batch: int, length: int, d_model: int, heads: int, min_run_time: float) -> list[tuple[str, float]]:
    """Time the three attention cores (forward + backward) on the same inputs."""
    d_head = d_model // heads
    generator = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(batch, heads, length, d_head, generator=generator).requires_grad_() for _ in range(3)
    )
    hyperplanes = draw_hyperplanes(4, d_head, 3, n_heads=heads, generator=generator)
    scale = 1.0 / math.sqrt(d_head)

    def sdpa():
        F.scaled_dot_product_attention(q, k, v).sum().backward()

    def full():
        weights = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
        (weights @ v).sum().backward()

    def sparse():
        mask = lsh_attention_mask(q, k, hyperplanes)
        weights = masked_softmax(q @ k.transpose(-2, -1) * scale, mask)
        (weights @ v).sum().backward()

    return [(name, median_ms(fn, min_run_time)) for name, fn in (("SDPA", sdpa), ("full", full), ("SSA (dense masked)", sparse))]


def mc_rows(batch: int, length: int, in_features: int, passes: int, min_run_time: float) -> list[tuple[str, float]]:
    """Time batched and looped Monte-Carlo dropout on the paper-size model (forward + backward)."""
    torch.manual_seed(0)
    batched_model = UAMRN(paper_model().model_copy(update={"mc_samples": passes}), in_features, 5).train()
    looped_model = UAMRN(paper_model().model_copy(update={"mc_samples": 1}), in_features, 5).train()
    looped_model.load_state_dict(batched_model.state_dict())
    features = torch.randn(batch, length, in_features)

    def batched():
        batched_model.zero_grad(set_to_none=True)
        batched_model(features).logits.sum().backward()

    def looped():
        looped_model.zero_grad(set_to_none=True)
        passes_logits = torch.stack([looped_model(features).logits for _ in range(passes)])
        passes_logits.mean(dim=0).sum().backward()

    return [(f"batched, M = {passes}", median_ms(batched, min_run_time)), (f"looped, M = {passes}", median_ms(looped, min_run_time))]


def render(args, attention, mc) -> str:
    cpu = cpu_model()
    lines = [
        "# Attention and Monte-Carlo dropout timings",
        "",
        f"Command: `python bench/bench_attention.py --threads {args.threads} "
        f"--min-run-time {args.min_run_time} --output {args.output}`",
        f"Machine: {cpu}, {os.cpu_count()} logical CPUs (shared with other jobs), "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s).",
        "Each figure is the median forward + backward CPU time (`time.process_time`) of",
        "`torch.utils.benchmark` measurements.",
        "",
        f"## Attention core, B = {args.batch}, L = {args.length}, d_model = {args.d_model}, "
        f"{args.heads} heads, n_p 3, n_t 4",
        "",
        "| attention | ms | relative to SDPA |",
        "|---|---|---|",
    ]
    reference = attention[0][1]
    lines += [f"| {name} | {ms:.3f} | {ms / reference:.2f} |" for name, ms in attention]
    lines += [
        "",
        f"## Monte-Carlo dropout, paper-size UAMRN, B = {args.mc_batch}, L = {args.length}, "
        f"F = {args.in_features}",
        "",
        "| passes | ms | relative to batched |",
        "|---|---|---|",
    ]
    reference = mc[0][1]
    lines += [f"| {name} | {ms:.1f} | {ms / reference:.2f} |" for name, ms in mc]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="sequences per attention call (8 samples x 8 passes)")
    parser.add_argument("--length", type=int, default=32, help="sequence length L")
    parser.add_argument("--d-model", type=int, default=1024, help="token width")
    parser.add_argument("--heads", type=int, default=2, help="attention heads")
    parser.add_argument("--mc-batch", type=int, default=8, help="samples per Monte-Carlo batch")
    parser.add_argument("--in-features", type=int, default=512, help="frame feature width F (mini_xception: 512)")
    parser.add_argument("--passes", type=int, default=8, help="Monte-Carlo passes M")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of measurement per row")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown table to this file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    attention = attention_rows(args.batch, args.length, args.d_model, args.heads, args.min_run_time)
    mc = mc_rows(args.mc_batch, args.length, args.in_features, args.passes, args.min_run_time)
    text = render(args, attention, mc)
    print(text, end="")

    if args.output is not None:
        temporary = args.output.with_suffix(args.output.suffix + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, args.output)


if __name__ == "__main__":
    main()
