"""Find and load finished LOSO run directories, and group them into variants with seeds.

A run directory is what ``uamrn evaluate`` writes: ``config.yaml``, ``summary.json``,
``predictions.csv`` and ``folds/<subject>/``. An ablation directory (``uamrn ablate``) contains
runs at ``<variant>/seed<k>/`` plus an ``ablation.json`` manifest that lists the runs it
expects, so runs that never finished are reported by name.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

__all__ = [
    "MANIFEST",
    "RunResult",
    "MissingRun",
    "VariantGroup",
    "RunCollection",
    "load_runs",
    "config_diff",
]

log = logging.getLogger(__name__)

MANIFEST = "ablation.json"
SUMMARY_KEYS = (
    "dataset",
    "class_names",
    "folds_expected",
    "folds_done",
    "folds_missing",
    "pooled",
    "per_subject_mean",
    "per_database",
    "per_subject",
    "mean_gamma_per_class",
    "class_counts",
    "timing",
)
PREDICTION_COLUMNS = ("database", "subject", "clip", "true_label", "pred_label", "gamma")
_SEED_DIR = re.compile(r"seed(\d+)$")
# Keys that differ between seeds of one variant without making it another variant.
_SEED_KEYS = {"train.seed", "train.threads"}


@dataclass
class RunResult:
    """One finished (possibly partial) LOSO run.

    Attributes:
        path: The run directory.
        label: Variant name: the parent folder for ``.../<variant>/seed<k>``, else the folder name.
        seed: ``train.seed`` from the run's config.
        summary: Parsed ``summary.json``.
        predictions: Parsed ``predictions.csv``, one row per test sample of every finished fold.
        config: Parsed ``config.yaml`` (a plain dict; empty when the file is absent).
        planned_folds: Test subjects the ablation was restricted to (``--folds``), or None
            when every subject of the dataset is a planned fold.
    """

    path: Path
    label: str
    seed: int | None
    summary: dict[str, Any]
    predictions: pd.DataFrame
    config: dict[str, Any]
    planned_folds: list[str] | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.summary["class_names"])

    @property
    def folds_done(self) -> list[str]:
        return [str(s) for s in self.summary.get("folds_done") or []]

    @property
    def folds_planned(self) -> list[str]:
        """Folds this run should have: the ablation's ``--folds``, else every subject."""
        if self.planned_folds is not None:
            return list(self.planned_folds)
        return [str(s) for s in self.summary.get("folds_expected") or []]

    @property
    def folds_missing(self) -> list[str]:
        if self.planned_folds is not None:
            done = set(self.folds_done)
            return [s for s in self.planned_folds if s not in done]
        return [str(s) for s in self.summary.get("folds_missing") or []]

    @property
    def complete(self) -> bool:
        return not self.folds_missing

    def probabilities(self):
        """Class probabilities, shape (N, C), columns ``prob_<class>`` in class order."""
        columns = [f"prob_{name}" for name in self.class_names]
        absent = [c for c in columns if c not in self.predictions.columns]
        if absent:
            raise ValueError(
                f"{self.path / 'predictions.csv'} lacks probability columns {absent}; "
                "rerun `uamrn evaluate` with this version to rewrite it"
            )
        return self.predictions[columns].to_numpy(dtype=float)


@dataclass
class MissingRun:
    """A run that was planned or started but has no finished fold to report."""

    path: Path
    label: str
    seed: int | None
    reason: str


@dataclass
class VariantGroup:
    """All seeds of one variant."""

    label: str
    runs: list[RunResult]
    missing: list[MissingRun] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.runs[0].config

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]


@dataclass
class RunCollection:
    """Everything the report is built from."""

    groups: list[VariantGroup]
    class_names: list[str]
    reference: str
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def group(self, label: str) -> VariantGroup:
        for group in self.groups:
            if group.label == label:
                return group
        raise KeyError(label)

    @property
    def runs(self) -> list[RunResult]:
        return [r for g in self.groups for r in g.runs]

    @property
    def missing_runs(self) -> list[MissingRun]:
        return [m for g in self.groups for m in g.missing]


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_diff(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between two run configs, seeds excluded: ``{key: (ref, other)}``."""
    ref_flat, other_flat = _flatten(reference), _flatten(other)
    keys = sorted((set(ref_flat) | set(other_flat)) - _SEED_KEYS)
    return {k: (ref_flat.get(k), other_flat.get(k)) for k in keys if ref_flat.get(k) != other_flat.get(k)}


def _read_summary(path: Path) -> dict[str, Any]:
    file = path / "summary.json"
    try:
        summary = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON ({err}); rerun `uamrn evaluate` on {path} to rewrite it") from err
    absent = [k for k in SUMMARY_KEYS if k not in summary]
    if absent:
        raise ValueError(
            f"{file} lacks the keys {absent}; it was not written by `uamrn evaluate` "
            "of this version: rerun evaluate on that directory to rebuild the summary"
        )
    return summary


def _read_predictions(path: Path) -> pd.DataFrame:
    file = path / "predictions.csv"
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found; rerun `uamrn evaluate` on {path} to finish the run")
    frame = pd.read_csv(file, dtype={"subject": str, "clip": str, "database": str})
    absent = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if absent:
        raise ValueError(f"{file} lacks the columns {absent}; rerun `uamrn evaluate` to rewrite it")
    return frame


def _read_config(path: Path) -> dict[str, Any]:
    file = path / "config.yaml"
    if not file.is_file():
        return {}
    try:
        return yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{file} is not valid YAML ({err})") from err


def _label_and_seed(path: Path, config: dict[str, Any]) -> tuple[str, int | None]:
    match = _SEED_DIR.match(path.name)
    seed = config.get("train", {}).get("seed")
    if match:
        return path.parent.name, int(match.group(1)) if seed is None else int(seed)
    return path.name, None if seed is None else int(seed)


def _is_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("summary.json", "config.yaml", "folds"))


def _find_run_dirs(path: Path, depth: int = 2) -> list[Path]:
    if _is_run_dir(path):
        return [path]
    if depth == 0:
        return []
    found: list[Path] = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        found.extend(_find_run_dirs(child, depth - 1))
    return found


def load_run(path: Path) -> RunResult:
    """Load one run directory; raise with the file and the fix when a part is absent or invalid."""
    path = Path(path)
    config = _read_config(path)
    label, seed = _label_and_seed(path, config)
    if not (path / "summary.json").is_file():
        raise FileNotFoundError(
            f"{path / 'summary.json'} not found; the run has not finished: rerun the same "
            "`uamrn evaluate` (or `uamrn ablate`) command to resume it"
        )
    return RunResult(path, label, seed, _read_summary(path), _read_predictions(path), config)


def _expected_runs(root: Path, manifest: dict[str, Any]) -> list[tuple[str, int, Path]]:
    return [(v, int(s), root / v / f"seed{s}") for v in manifest["variants"] for s in manifest["seeds"]]


def load_runs(paths: list[Path]) -> RunCollection:
    """Load runs from run directories and ablation directories, grouped by variant.

    Args:
        paths: Run directories (``uamrn evaluate --out``) or ablation directories
            (``uamrn ablate --out``), in the order the report should list them.

    Returns:
        The runs grouped by variant label. The reference variant, against which every other
        variant is tested, is ``full`` when present, else the first group.

    Raises:
        FileNotFoundError: A path does not exist or contains no run.
        ValueError: Runs of different datasets or class lists are mixed, or a file is invalid.
    """
    groups: dict[str, VariantGroup] = {}
    manifest: dict[str, Any] | None = None
    notes: list[str] = []

    for path in map(Path, paths):
        if not path.is_dir():
            raise FileNotFoundError(f"run directory {path} not found; give the --out folder of `uamrn evaluate` or `uamrn ablate`")
        expected: dict[Path, tuple[str, int]] = {}
        if (path / MANIFEST).is_file():
            manifest = json.loads((path / MANIFEST).read_text())
            expected = {p: (v, s) for v, s, p in _expected_runs(path, manifest)}
            for variant in manifest["variants"]:
                groups.setdefault(variant, VariantGroup(variant, []))

        run_dirs = _find_run_dirs(path)
        for run_dir in run_dirs:
            if not (run_dir / "summary.json").is_file():
                config = _read_config(run_dir)
                label, seed = _label_and_seed(run_dir, config)
                reason = "no summary.json (unfinished run)"
                groups.setdefault(label, VariantGroup(label, [])).missing.append(MissingRun(run_dir, label, seed, reason))
                continue
            run = load_run(run_dir)
            if manifest is not None and run_dir in expected:
                run.planned_folds = manifest.get("folds")
            if run.summary.get("pooled") is None:
                gap = MissingRun(run_dir, run.label, run.seed, "no fold finished")
                groups.setdefault(run.label, VariantGroup(run.label, [])).missing.append(gap)
                continue
            groups.setdefault(run.label, VariantGroup(run.label, [])).runs.append(run)

        for run_path, (variant, seed) in expected.items():
            if run_path not in run_dirs:
                groups[variant].missing.append(MissingRun(run_path, variant, seed, "not started"))

    all_runs = [r for g in groups.values() for r in g.runs]
    if not all_runs:
        raise FileNotFoundError(
            f"no finished run (a folder with summary.json) under {', '.join(map(str, paths))}; "
            "give RUN_DIRs written by `uamrn evaluate` or an ablation DIR written by `uamrn ablate`"
        )

    class_names = all_runs[0].class_names
    datasets = {r.summary["dataset"] for r in all_runs}
    if len(datasets) > 1:
        raise ValueError(f"runs of different datasets {sorted(datasets)} cannot share one report; report them separately")
    for run in all_runs:
        if run.class_names != class_names:
            raise ValueError(
                f"{run.path} has classes {run.class_names}, but {all_runs[0].path} has {class_names}; "
                "report runs with the same class list together"
            )

    ordered = [g for g in groups.values() if g.runs or g.missing]
    for group in ordered:
        group.runs.sort(key=lambda r: (r.seed is None, r.seed))
        for run in group.runs[1:]:
            diff = config_diff(group.runs[0].config, run.config)
            if diff:
                notes.append(
                    f"Runs of variant `{group.label}` differ in more than the seed: "
                    f"{run.path} vs {group.runs[0].path} differ in {sorted(diff)}."
                )

    labels = [g.label for g in ordered if g.runs]
    reference = "full" if "full" in labels else labels[0]
    return RunCollection(ordered, class_names, reference, manifest, notes)
