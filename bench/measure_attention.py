"""Section (a): attention forward + backward time and peak memory against sequence length."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from timing import PeakMemory, best_time, mib

logger = logging.getLogger(__name__)

AUTO_BUCKETED_ABOVE_LENGTH = 256  # the model's switch from the dense to the bucketed form
FRESH_PROCESS_MEMORY_FROM_LENGTH = 1024  # peak memory from a fresh process at this length and above


def _full(q, k, v, hyperplanes):
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def _sdpa(q, k, v, hyperplanes):
    return F.scaled_dot_product_attention(q, k, v)


def _dense_ssa(q, k, v, hyperplanes):
    from uamrn.nn.attention import masked_softmax
    from uamrn.nn.lsh import lsh_attention_mask

    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.matmul(masked_softmax(scores, lsh_attention_mask(q, k, hyperplanes)), v)


def _bucketed_ssa(q, k, v, hyperplanes):
    from uamrn.nn.lsh_bucketed import bucketed_lsh_attention

    return bucketed_lsh_attention(q, k, v, hyperplanes)


IMPLEMENTATIONS = {"full": _full, "sdpa": _sdpa, "dense_ssa": _dense_ssa, "bucketed_ssa": _bucketed_ssa}


def _estimated_bytes(name: str, rows: int, length: int, n_tables: int, padded_scores: int) -> float:
    """Rough peak memory of one forward + backward, to skip runs that would not fit."""
    if name == "sdpa":
        return 4.0 * rows * length * length  # worst case: the math fallback keeps one score matrix
    if name == "full":
        return 4 * 4.0 * rows * length * length
    if name == "dense_ssa":
        return (6 * 4.0 + 2 * n_tables) * rows * length * length
    # Kept weights, one group's scores at a time, and a few (L, d_head) tensors per table.
    return 2 * 4.0 * rows * padded_scores + 4.0 * 8 * n_tables * rows * length * 512


# Run in a fresh process, where every byte the step allocates faults in new pages, so the
# growth of the peak resident set is the step's peak memory. In the benchmark process the
# allocator reuses pages freed by earlier runs, and the sampled growth reads near zero.
# The peak is read from VmHWM in /proc/self/status: unlike ru_maxrss, which Linux carries
# over from the parent across fork and exec, VmHWM belongs to this process's own memory.
_PEAK_SCRIPT = """
import json, sys, torch
sys.path.insert(0, {bench_dir!r})
import measure_attention
torch.set_num_threads({threads})
generator = torch.Generator().manual_seed(0)
shape = ({batch}, {heads}, {length}, {d_head})
q, k, v = (torch.randn(shape, generator=generator, requires_grad=True) for _ in range(3))
hyperplanes = torch.randn({heads}, {n_tables}, {d_head}, {n_hyperplanes}, generator=generator)
upstream = torch.randn(shape, generator=generator)
# A small warm-up call first, so that module imports and kernel set-up are not counted.
small = [torch.randn({batch}, {heads}, 64, {d_head}, requires_grad=True) for _ in range(3)]
measure_attention.IMPLEMENTATIONS[{name!r}](*small, hyperplanes).backward(torch.randn_like(small[0]))
def high_water_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
before = high_water_kib()
measure_attention.IMPLEMENTATIONS[{name!r}](q, k, v, hyperplanes).backward(upstream)
after = high_water_kib()
print(json.dumps({{"peak_bytes": (after - before) * 1024}}))
"""


def peak_bytes_in_fresh_process(name: str, *, batch, heads, length, d_head, n_tables, n_hyperplanes) -> int:
    """Return the peak memory of one forward + backward of ``name``, measured in a new process."""
    script = _PEAK_SCRIPT.format(
        bench_dir=str(Path(__file__).resolve().parent), threads=torch.get_num_threads(), batch=batch, heads=heads,
        length=length, d_head=d_head, n_tables=n_tables, n_hyperplanes=n_hyperplanes, name=name,
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"]


def _measure(fn, q, k, v, hyperplanes, repeats: int, warmup: int) -> tuple[float, int]:
    upstream = torch.randn(q.shape[:-1] + (v.shape[-1],))

    def step():
        q.grad = k.grad = v.grad = None
        out = fn(q, k, v, hyperplanes)
        out.backward(upstream)

    if repeats == 1 and warmup == 0:
        # Long sequences: one call, timed and memory-sampled at once.
        with PeakMemory() as memory:
            seconds = best_time(step, repeats=1, warmup=0)
        return seconds, memory.peak_bytes

    seconds = best_time(step, repeats=repeats, warmup=warmup)
    with PeakMemory() as memory:
        step()
    return seconds, memory.peak_bytes


def measure(lengths, hyperplane_counts, *, batch=1, heads=2, d_head=512, n_tables=4, memory_limit_gb=6.0, quick=False):
    """Time every implementation at every length; return rows of results.

    Returns:
        A list of dicts with keys ``length``, ``n_hyperplanes``, ``bucket_max_over_mean_q``,
        ``bucket_max_over_mean_k``, ``padded_fraction`` and ``<impl>_s`` / ``<impl>_peak_mib``
        (None with a ``<impl>_skipped`` reason when not run).
    """
    from uamrn.nn.lsh_bucketed import plan_buckets

    generator = torch.Generator().manual_seed(0)
    results = []
    shared = {}  # full and SDPA do not depend on n_p: measured once per length
    for length in lengths:
        q = torch.randn(batch, heads, length, d_head, generator=generator, requires_grad=True)
        k = torch.randn(batch, heads, length, d_head, generator=generator, requires_grad=True)
        v = torch.randn(batch, heads, length, d_head, generator=generator, requires_grad=True)
        # Short calls are disturbed most by other processes, so they get the most repeats.
        if quick:
            repeats, warmup = 1, 0
        elif length >= 4096:
            repeats, warmup = 2, 1
        elif length <= 256:
            repeats, warmup = 30, 3
        else:
            repeats, warmup = 3, 1

        for n_hyperplanes in hyperplane_counts:
            hyperplanes = torch.randn(heads, n_tables, d_head, n_hyperplanes, generator=generator)
            plan = plan_buckets(q, k, hyperplanes)
            row = {
                "length": length,
                "n_hyperplanes": n_hyperplanes,
                "n_tables": n_tables,
                "d_head": d_head,
                "heads": heads,
                "batch": batch,
                "bucket_max_over_mean_q": plan.max_queries / plan.mean_queries,
                "bucket_max_over_mean_k": plan.max_keys / plan.mean_keys,
                "padded_fraction": plan.padded_scores / plan.dense_scores,
                "even_fraction": plan.even_scores / plan.dense_scores,
                "block_size": plan.block_size,
                "n_groups": plan.n_groups,
                "bucketed_uses_dense_fallback": not plan.use_buckets,
            }
            for name, fn in IMPLEMENTATIONS.items():
                if name in ("full", "sdpa") and (length, name) in shared:
                    row.update(shared[(length, name)])
                    continue
                needed = _estimated_bytes(name, batch * heads, length, n_tables, plan.padded_scores)
                if needed > memory_limit_gb * 2**30:
                    result = {f"{name}_s": None, f"{name}_peak_mib": None,
                              f"{name}_skipped": f"estimated {needed / 2**30:.1f} GiB > limit {memory_limit_gb} GiB"}
                else:
                    logger.info("attention L=%d n_p=%d %s", length, n_hyperplanes, name)
                    seconds, peak = _measure(fn, q, k, v, hyperplanes, repeats, warmup)
                    if length >= FRESH_PROCESS_MEMORY_FROM_LENGTH and not quick:
                        peak = peak_bytes_in_fresh_process(
                            name, batch=batch, heads=heads, length=length, d_head=d_head,
                            n_tables=n_tables, n_hyperplanes=n_hyperplanes,
                        )
                    result = {f"{name}_s": seconds, f"{name}_peak_mib": peak / 2**20}
                if name in ("full", "sdpa"):
                    shared[(length, name)] = result
                row.update(result)
            auto = "dense_ssa" if length <= AUTO_BUCKETED_ABOVE_LENGTH else "bucketed_ssa"
            row["auto_impl"] = auto
            row["auto_s"] = row[f"{auto}_s"]
            results.append(row)
    return results


def _sdpa_lsh_mask(q, k, v, hyperplanes):
    from uamrn.nn.lsh import lsh_attention_mask

    with torch.no_grad():
        mask = lsh_attention_mask(q, k, hyperplanes)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def measure_short(batches=(1, 8, 64), *, length=32, heads=2, d_head=512, n_tables=4, n_hyperplanes=3, repeats=30):
    """Time full attention, SDPA and the dense SSA at a short length for several batch sizes.

    At L = 32 each call takes about a millisecond, so per-operation overhead decides the
    ratio. Batch 8 is one clip's M = 8 Monte-Carlo passes, batch 64 a training batch of 8.
    Also timed: SDPA given the LSH mask as a boolean ``attn_mask``, which equals the dense
    SSA but is not what the model runs. Forward only, the hashing of q and k, the whole mask
    (hashing included) and the q k^T product are timed too.
    """
    from uamrn.nn.lsh import lsh_attention_mask, lsh_buckets

    generator = torch.Generator().manual_seed(1)
    rows = []
    for batch in batches:
        q, k, v = (torch.randn(batch, heads, length, d_head, generator=generator, requires_grad=True) for _ in range(3))
        hyperplanes = torch.randn(heads, n_tables, d_head, n_hyperplanes, generator=generator)
        row = {"batch": batch, "length": length, "heads": heads, "d_head": d_head,
               "n_tables": n_tables, "n_hyperplanes": n_hyperplanes}
        implementations = {**IMPLEMENTATIONS, "sdpa_lsh_mask": _sdpa_lsh_mask}
        for name in ("full", "sdpa", "dense_ssa", "sdpa_lsh_mask"):
            logger.info("attention L=%d batch %d %s", length, batch, name)
            row[f"{name}_s"], _ = _measure(implementations[name], q, k, v, hyperplanes, repeats, 3)

        with torch.no_grad():
            parts = {
                "hashing": lambda: (lsh_buckets(q, hyperplanes), lsh_buckets(k, hyperplanes)),
                "mask": lambda: lsh_attention_mask(q, k, hyperplanes),
                "scores": lambda: torch.matmul(q, k.transpose(-2, -1)),
            }
            for name, part in parts.items():
                row[f"{name}_forward_s"] = best_time(part, repeats=repeats, warmup=3)
        rows.append(row)
    return rows


def render_short(rows, quick: bool = False) -> str:
    """Format the short-sequence panel as Markdown."""
    timing = "best of 3 runs after 3 warm-up runs (--quick)" if quick else "best of 30 runs after 3 warm-up runs"
    first = rows[0]
    lines = [
        f"**L = {first['length']} at the model's batch sizes** (n_p = {first.get('n_hyperplanes', 3)}; batch 8 is one "
        f"clip's M = 8 Monte-Carlo passes, 64 a training batch of 8 clips; {timing}). Forward + backward: full, SDPA, "
        "dense SSA, and SDPA given the LSH mask as a boolean `attn_mask`.",
        "",
        "| batch | full ms | SDPA ms | dense SSA ms | SDPA + LSH mask ms | dense SSA vs SDPA (time ratio) "
        "| SDPA + LSH mask vs SDPA | full vs SDPA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['batch']} | {_seconds(row['full_s'])} | {_seconds(row['sdpa_s'])} | {_seconds(row['dense_ssa_s'])} "
            f"| {_seconds(row.get('sdpa_lsh_mask_s'))} | {_ratio(row['dense_ssa_s'], row['sdpa_s'])} "
            f"| {_ratio(row.get('sdpa_lsh_mask_s'), row['sdpa_s'])} | {_ratio(row['full_s'], row['sdpa_s'])} |"
        )
    if "hashing_forward_s" in first:
        lines += [
            "",
            "Parts of the dense SSA, forward only: hashing q and k (one product with n_t * n_p hyperplanes per "
            "head each), the whole mask (hashing included) and the q k^T product; GFLOP/s counts the "
            "multiply-adds of the products twice.",
            "",
            "| batch | hashing ms | mask ms | q k^T ms | hashing GFLOP/s | q k^T GFLOP/s |",
            "|---|---|---|---|---|---|",
        ]
        for row in rows:
            rows_hashed = row["batch"] * row["heads"] * 2 * row["length"]
            hashing_flops = 2.0 * rows_hashed * row["d_head"] * row["n_tables"] * row["n_hyperplanes"]
            score_flops = 2.0 * row["batch"] * row["heads"] * row["length"] ** 2 * row["d_head"]
            lines.append(
                f"| {row['batch']} | {row['hashing_forward_s'] * 1000:.3f} | {row['mask_forward_s'] * 1000:.3f} "
                f"| {row['scores_forward_s'] * 1000:.3f} | {hashing_flops / row['hashing_forward_s'] / 1e9:.0f} "
                f"| {score_flops / row['scores_forward_s'] / 1e9:.0f} |"
            )
    return "\n".join(lines) + "\n"


def _ratio(numerator, denominator) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "-"
    return f"{numerator / denominator:.2f}x"


def _seconds(value) -> str:
    """Format seconds as milliseconds, with one decimal below one second."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f}"
    return f"{value * 1000:.0f}"


def _timing_text(quick: bool) -> str:
    if quick:
        return (
            "--quick: time is one cold run per size and peak memory the resident-memory increase sampled "
            "during it, a smoke test whose ratios are not measurements."
        )
    return (
        "Time is the best of 30 runs after 3 warm-up runs for L <= 256, of 3 runs after one warm-up for "
        "L = 1024, and of 2 runs after one warm-up for L >= 4096. Peak memory for "
        f"L >= {FRESH_PROCESS_MEMORY_FROM_LENGTH} is the growth of the peak resident set over one forward + "
        "backward in a fresh process, where the allocator cannot reuse pages an earlier run freed. For shorter L "
        "it is the highest resident-memory increase sampled every 1 ms during one more run, and reads near zero."
    )


def render(results, torch_threads: int, quick: bool = False) -> str:
    """Format the attention results as Markdown with the targets."""
    if not results:
        return "not measured: no attention results\n"
    first = results[0]
    lines = [
        f"Shapes: batch {first['batch']}, {first['heads']} heads, d_head {first['d_head']} (d_model 1024 / 2 heads, "
        f"the paper's size), n_t = {first['n_tables']} hash tables, float32, forward + backward with a random "
        f"upstream gradient, {torch_threads} torch threads. {_timing_text(quick)} *full* is softmax attention over all keys written with matmuls (the paper's "
        "full-attention baseline), *SDPA* is `torch.nn.functional.scaled_dot_product_attention`, *dense SSA* "
        "the model's masked L x L form, *bucketed SSA* `uamrn.nn.lsh_bucketed.bucketed_lsh_attention`. "
        "*auto* is what the model runs with `attention_impl: auto` (dense for L <= 256, bucketed above). "
        "*bucketed scores / L^2* counts the scores the bucketed form computes: each bucket's query and key counts "
        "rounded up to the block size, summed over tables and buckets; in brackets the count if every bucket held "
        "exactly its share, n_t / 2^n_p. *groups* is the number of batched matrix products per call.",
        "",
    ]
    for n_hyperplanes in sorted({row["n_hyperplanes"] for row in results}):
        lines += [
            f"**n_p = {n_hyperplanes} ({2 ** n_hyperplanes} buckets per table)**",
            "",
            "| L | full ms | SDPA ms | dense SSA ms | bucketed ms | auto ms | bucketed vs full | bucketed vs dense SSA "
            "| bucketed vs SDPA | auto vs SDPA (time ratio) | peak MiB full / SDPA / dense / bucketed | largest bucket / mean (q, k) "
            "| bucketed scores / L^2 (even buckets) | block size, groups |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in (r for r in results if r["n_hyperplanes"] == n_hyperplanes):
            peaks = " / ".join(
                "-" if row[f"{name}_peak_mib"] is None else f"{row[f'{name}_peak_mib']:.0f}"
                for name in ("full", "sdpa", "dense_ssa", "bucketed_ssa")
            )
            fallback = " (dense fallback)" if row["bucketed_uses_dense_fallback"] else ""
            lines.append(
                f"| {row['length']} | {_seconds(row['full_s'])} | {_seconds(row['sdpa_s'])} | {_seconds(row['dense_ssa_s'])} "
                f"| {_seconds(row['bucketed_ssa_s'])}{fallback} | {_seconds(row['auto_s'])} "
                f"| {_ratio(row['full_s'], row['bucketed_ssa_s'])} | {_ratio(row['dense_ssa_s'], row['bucketed_ssa_s'])} "
                f"| {_ratio(row['sdpa_s'], row['bucketed_ssa_s'])} | {_ratio(row['auto_s'], row['sdpa_s'])} | {peaks} "
                f"| {row['bucket_max_over_mean_q']:.2f}, {row['bucket_max_over_mean_k']:.2f} "
                f"| {row['padded_fraction']:.3f} ({row['even_fraction']:.3f}) | {row['block_size']}, {row['n_groups']} |"
            )
        skipped = [
            f"L={row['length']} {name}: {row[f'{name}_skipped']}"
            for row in results if row["n_hyperplanes"] == n_hyperplanes
            for name in IMPLEMENTATIONS if row.get(f"{name}_skipped")
        ]
        if skipped:
            lines += ["", "Skipped (memory): " + "; ".join(skipped) + "."]
        lines.append("")
    return "\n".join(lines)


def targets(results, short_rows=None) -> list[tuple[str, str, bool | None]]:
    """Return (target, measured, met) for the attention targets; met is None when not measured.

    The L = 32 target is judged at batch 1, the first table's batch; ``short_rows`` (from
    :func:`measure_short`) adds the ratios at the model's batch sizes to the text.
    """
    def find(length, n_hyperplanes):
        return next((r for r in results if r["length"] == length and r["n_hyperplanes"] == n_hyperplanes), None)

    checks = []
    for n_hyperplanes, goal in ((3, 1.5), (6, 4.0)):
        row = find(4096, n_hyperplanes)
        label = f"L=4096, n_p={n_hyperplanes}: bucketed SSA >= {goal}x faster than full attention"
        if row is None or row["full_s"] is None or row["bucketed_ssa_s"] is None:
            checks.append((label, "not measured", None))
            continue
        speedup = row["full_s"] / row["bucketed_ssa_s"]
        versus_sdpa = row["sdpa_s"] / row["bucketed_ssa_s"] if row["sdpa_s"] else None
        text = f"{speedup:.2f}x vs full" + (f", {versus_sdpa:.2f}x vs SDPA" if versus_sdpa else "")
        text += (
            f"; the bucketed form computes {row['padded_fraction']:.3f} L^2 scores (even buckets: "
            f"{row['even_fraction']:.3f} L^2; the largest bucket is {row['bucket_max_over_mean_q']:.2f}x the mean)"
        )
        checks.append((label, text, speedup >= goal))
    row = find(32, 3)
    label = "L=32: auto choice no slower than 1.2x SDPA"
    if row is None or row["auto_s"] is None or row["sdpa_s"] is None:
        checks.append((label, "not measured", None))
    else:
        ratio = row["auto_s"] / row["sdpa_s"]
        text = f"auto (dense SSA) takes {ratio:.2f}x the SDPA time at batch 1"
        if short_rows:
            text += "; " + ", ".join(
                f"{short['dense_ssa_s'] / short['sdpa_s']:.2f}x at batch {short['batch']}" for short in short_rows if short['batch'] != 1
            ) + " (panel below the tables)"
        checks.append((label, text, ratio <= 1.2))
    return checks
