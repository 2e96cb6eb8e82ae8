"""Section (f): LOSO accuracy of a finished `uamrn evaluate` run on MEGC2019, beside published figures.

Unlike the other sections this one trains nothing: it reads the ``summary.json`` of a run
made with the default command, so the accuracy quoted here is the one that run measured.
"""

from __future__ import annotations

import json
from pathlib import Path

# UF1 / UAR supplied with the MEGC2019 data (full composite unless the part is named).
REFERENCES = [
    ("LBP-TOP, MEGC2019 baseline (full composite incl. SAMM)", "0.588 / 0.579", "", ""),
    ("STSTNet, published (full composite incl. SAMM)", "0.735 / 0.761", "0.838 / 0.869", "0.680 / 0.701"),
    ("logistic regression on flow pixels, these 309 samples, last model", "0.732 / 0.739", "0.829", "0.649"),
    ("STSTNet retrained with its own settings, these 309 samples, last epoch", "0.699 / 0.714", "", ""),
]


def measure(run_dir: Path) -> dict:
    """Read the pooled and per-database metrics and the wall time of a finished run."""
    summary_path = Path(run_dir) / "summary.json"
    if not summary_path.is_file():
        return {"skipped": f"no summary.json in {run_dir}; run uamrn evaluate there first"}
    summary = json.loads(summary_path.read_text())
    if summary["folds_missing"]:
        return {"skipped": f"run {run_dir} is missing folds {summary['folds_missing']}"}

    config = summary["config"]
    return {
        "run_dir": str(run_dir),
        "n_samples": summary["n_samples"],
        "n_subjects": summary["n_subjects"],
        "wall_s": summary["timing"]["wall_s"],
        "epochs": config["train"]["epochs"],
        "d_model": config["model"]["d_model"],
        "databases": config["data"]["databases"],
        "pooled": {key: summary["pooled"][key] for key in ("uf1", "uar", "accuracy")},
        "per_database": {db: {key: part[key] for key in ("uf1", "uar")} for db, part in summary["per_database"].items()},
        "per_subject_mean": {key: summary["per_subject_mean"][key] for key in ("uf1", "uar")},
    }


def render(result: dict) -> str:
    if "skipped" in result:
        return f"not measured: {result['skipped']}\n"
    pooled = result["pooled"]
    parts = result["per_database"]

    def cell(db: str) -> str:
        return f"{parts[db]['uf1']:.3f} / {parts[db]['uar']:.3f}" if db in parts else ""

    lines = [
        "Command: `uamrn evaluate --dataset megc2019 --root ../shared/data/megc2019 --databases "
        f"{','.join(result['databases'])} --out RUN_DIR` (default `cpu` preset: d_model {result['d_model']}, "
        f"{result['epochs']} epochs, model after the last epoch), {result['n_samples']} samples, "
        f"{result['n_subjects']} subjects. Wall time of that run, from its `summary.json`: "
        f"{result['wall_s'] / 60:.1f} min, including the feature computation with an empty cache and the final model.",
        "",
        "| method | UF1 / UAR, all | CASME II part | SMIC part |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {overall} | {casme2} | {smic} |" for name, overall, casme2, smic in REFERENCES]
    lines.append(
        f"| **UAMRN, this toolkit** | **{pooled['uf1']:.3f} / {pooled['uar']:.3f}** | {cell('casme2')} | {cell('smic')} |"
    )
    lines += [
        "",
        f"Accuracy (pooled) {pooled['accuracy']:.3f}; per-subject means UF1 {result['per_subject_mean']['uf1']:.3f}, "
        f"UAR {result['per_subject_mean']['uar']:.3f}. The reference figures are those supplied with the data; the "
        "published STSTNet figures include SAMM, and several published peers chose the best epoch on the test "
        "subject, so only the last two reference rows are like-for-like. Details: `docs/results-megc2019.md`.",
        "",
    ]
    return "\n".join(lines)
