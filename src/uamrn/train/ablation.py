"""Ablation variants of UAMRN and the runner that trains each variant with several seeds.

Each variant x seed is an ordinary LOSO run directory at ``OUT/<variant>/seed<k>/``,
written by the same code as ``uamrn evaluate``, so it resumes fold by fold. The manifest
``OUT/ablation.json`` records the base configuration, the variants and the seeds, which
lets the report name runs that never finished.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from uamrn.config import RunConfig

__all__ = ["Variant", "VARIANTS", "DEFAULT_VARIANTS", "parse_variants", "variant_config", "run_ablation"]

log = logging.getLogger(__name__)

MANIFEST = "ablation.json"


@dataclass(frozen=True)
class Variant:
    """One ablation: a name, what it removes, and the config change that removes it."""

    name: str
    description: str
    apply: Callable[[RunConfig], None]


def _no_change(cfg: RunConfig) -> None:
    return None


def _no_uncertainty(cfg: RunConfig) -> None:
    cfg.model.uncertainty = False


def _full_attention(cfg: RunConfig) -> None:
    cfg.model.attention = "full"


def _no_magnification(cfg: RunConfig) -> None:
    # One frame at the smallest factor, so the attention input has no factor axis.
    cfg.sequence.length = 1


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("full", "UAMRN as configured: LSH sparse attention, uncertainty-aware loss, L magnified frames", _no_change),
        Variant("no_uncertainty", "deterministic: plain cross-entropy on the mean logits (model.uncertainty false)", _no_uncertainty),
        Variant("full_attention", "full softmax attention in place of LSH sparse attention (model.attention full)", _full_attention),
        Variant("no_magnification", "one amplification factor instead of L (sequence.length 1)", _no_magnification),
    )
}
DEFAULT_VARIANTS = tuple(VARIANTS)


def parse_variants(text: str) -> list[str]:
    """Split a comma-separated variant list and check every name; ``full`` is always included."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if "full" not in names:
        names.insert(0, "full")
    return list(dict.fromkeys(names))


def variant_config(base: RunConfig, variant: str, seed: int) -> RunConfig:
    """Copy ``base``, apply ``variant`` and set ``train.seed`` to ``seed``."""
    cfg = base.model_copy(deep=True)
    VARIANTS[variant].apply(cfg)
    cfg.train.seed = seed
    return cfg


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _update_manifest(
    out_dir: Path, base: RunConfig, variants: list[str], seeds: list[int], folds: list[str] | None
) -> dict[str, Any]:
    """Create or extend ``ablation.json``; a different base configuration is an error."""
    path = out_dir / MANIFEST
    base_dump = base.model_copy(update={"train": base.train.model_copy(update={"seed": 0})}).model_dump(mode="json")
    manifest = {"reference": "full", "variants": variants, "seeds": seeds, "folds": folds, "base_config": base_dump}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("base_config") != base_dump:
            raise ValueError(
                f"{out_dir} contains an ablation with a different base configuration (see {path}); "
                "give a new --out folder, or the same options as before to resume it"
            )
        manifest["variants"] = list(dict.fromkeys(old["variants"] + variants))
        manifest["seeds"] = sorted(set(old["seeds"]) | set(seeds))
        # A fold list only narrows the plan while every run so far was narrowed too.
        old_folds = old.get("folds")
        manifest["folds"] = None if old_folds is None or folds is None else list(dict.fromkeys(old_folds + folds))
    _write_json(path, manifest)
    return manifest


def run_ablation(
    base: RunConfig,
    out_dir: Path,
    variants: list[str],
    seeds: list[int],
    folds: list[str] | None = None,
    evaluate: Callable[..., dict] | None = None,
    **evaluate_options: Any,
) -> list[Path]:
    """Train every variant with every seed as a LOSO run, resuming finished runs and folds.

    Args:
        base: Configuration of the full model; ``train.seed`` is replaced by each seed.
        out_dir: Ablation folder; runs go to ``out_dir/<variant>/seed<k>``.
        variants: Names from :data:`VARIANTS`.
        seeds: Seeds, one LOSO run per variant and seed.
        folds: Test subjects to run (all when None), for quick partial ablations.
        evaluate: The LOSO runner, ``evaluate(cfg, run_dir, folds=..., **options) -> summary``;
            default :func:`uamrn.train.loso.evaluate_dataset`.
        evaluate_options: Passed on to ``evaluate`` (for example a shared feature cache).

    Returns:
        The run directories, in seed-major order.
    """
    if evaluate is None:
        from uamrn.train.loso import evaluate_dataset as evaluate

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _update_manifest(out_dir, base, variants, seeds, folds)

    # Seed-major order: an ablation stopped early still has every variant for the first seeds,
    # so the comparisons stay paired.
    run_dirs = []
    total = len(variants) * len(seeds)
    for i, (seed, variant) in enumerate(((s, v) for s in seeds for v in variants), start=1):
        run_dir = out_dir / variant / f"seed{seed}"
        log.info("ablation run %d/%d: %s, seed %d -> %s", i, total, variant, seed, run_dir)
        start = time.perf_counter()
        summary = evaluate(variant_config(base, variant, seed), run_dir, folds=folds, **evaluate_options)
        done = set(summary.get("folds_done") or [])
        missing = [f for f in folds if f not in done] if folds else summary.get("folds_missing")
        log.info(
            "ablation run %s seed %d done in %.0f s: UF1 %.3f, UAR %.3f, planned folds missing: %s",
            variant,
            seed,
            time.perf_counter() - start,
            summary["pooled"]["uf1"],
            summary["pooled"]["uar"],
            missing or "none",
        )
        run_dirs.append(run_dir)
    return run_dirs
