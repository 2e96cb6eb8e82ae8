"""Per-sample figures: the magnified sequence (Figure 1 of Wei et al., Entropy 2022) and the
LSH attention of a saved fold model (their Figure 4), for one test sample.

Both need the dataset on disk and the reference run's fold model for the sample's subject.
When either is absent, the report prints the reason in place of the figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from uamrn.config import RunConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.report import figures
from uamrn.report.document import Block, Figure, Paragraph
from uamrn.report.runs import RunCollection, RunResult

__all__ = ["sample_blocks", "magnified_sequence", "sample_attention"]

log = logging.getLogger(__name__)

FLOW_CHANNELS = "red = horizontal flow u, green = vertical flow v, blue = optical strain"


def magnified_sequence(sample: Sample, cfg: RunConfig) -> np.ndarray:
    """Rebuild the sequence the model saw for ``sample``: (L, H, W, 3) uint8 RGB.

    Flow inputs are magnified in the motion domain, as the feature extractor does for
    ``flow`` and ``apex+flow``; frame inputs go through the onset/apex sequence builder.
    """
    factors = cfg.sequence.factors()
    if cfg.data.input == "frames":
        from uamrn.sequence import build_sequence

        return build_sequence(sample, cfg)

    from uamrn.magnify.motion import magnify_flow
    from uamrn.train.features import read_rgb

    # NOTE: mirrors the flow branch of uamrn.train.features._Extractor; keep the two in step.
    unit_factor = min(factors) if getattr(cfg.sequence, "flow_unit", "min") == "min" else max(factors)
    return magnify_flow(read_rgb(sample.flow), factors, unit_factor)


def sample_attention(run: RunResult, sample: Sample, class_names: tuple[str, ...]) -> tuple[list[np.ndarray], dict]:
    """Attention weights of the fold model that had ``sample``'s subject as its test subject.

    Returns:
        One (n_heads, L, L) array per block, and the model's prediction for the sample
        (``pred_name``, ``probabilities``, ``gamma``).

    Raises:
        FileNotFoundError: The fold model is missing.
    """
    from uamrn.train.features import compute_features
    from uamrn.train.runio import load_model

    model, meta = load_model(run.path / "folds" / sample.subject)
    single = SampleSet("report", class_names, [sample])
    features = meta.standardize(compute_features(single, meta.config, cache_dir=None))

    with torch.no_grad():
        output = model(torch.from_numpy(features), return_attention=True)
    probabilities = torch.softmax(output.logits, dim=-1)[0].numpy()
    prediction = {
        "pred_name": meta.class_names[int(probabilities.argmax())],
        "probabilities": probabilities,
        "gamma": float(output.gamma[0]),
    }
    return [weights[0].numpy() for weights in output.attention], prediction


def _choose_sample(run: RunResult, samples: list[Sample], key: str | None) -> Sample:
    by_key = {s.key: s for s in samples}
    if key is not None:
        if key not in by_key:
            raise ValueError(f"sample {key!r} is not in the dataset of {run.path}; give --sample DATABASE/SUBJECT/CLIP of a test sample")
        return by_key[key]

    for row in run.predictions.itertuples():
        candidate = by_key.get(f"{row.database}/{row.subject}/{row.clip}")
        if candidate is not None and (run.path / "folds" / candidate.subject / "model.safetensors").is_file():
            return candidate
    raise ValueError(f"no test sample of {run.path} has both its files and its fold model; pass --sample")


def sample_blocks(
    coll: RunCollection, fig_dir: Path, sample_key: str | None = None, data_images: bool = True
) -> list[Block]:
    """Draw the magnified sequence and the attention of one sample, or explain why they are absent.

    ``data_images=False`` leaves out the magnified sequence, which shows images derived from
    the dataset, so that the report can be published when the data licence forbids it.
    """
    from uamrn.data.registry import load_dataset

    run = coll.group(coll.reference).runs[0]
    cfg = RunConfig.model_validate(run.config)
    try:
        sample_set = load_dataset(cfg.data)
        sample = _choose_sample(run, sample_set.samples, sample_key)
    except (FileNotFoundError, ValueError) as err:
        log.warning("per-sample figures skipped: %s", err)
        return [Paragraph(f"Per-sample figures skipped: {err}")]

    row = run.predictions[
        (run.predictions["database"] == sample.database)
        & (run.predictions["subject"] == sample.subject)
        & (run.predictions["clip"] == sample.clip)
    ]
    true_name = sample_set.class_names[sample.label]
    blocks: list[Block] = [
        Paragraph(
            f"Sample `{sample.key}` (true class {true_name}), tested by the fold model of subject "
            f"`{sample.subject}` in `{run.path}`."
        )
    ]

    factors = cfg.sequence.factors()
    if data_images:
        frames = magnified_sequence(sample, cfg)
        kind = "magnified optical flow" if cfg.data.input != "frames" else "magnified face"
        colours = f" ({FLOW_CHANNELS})" if cfg.data.input != "frames" else ""
        title = f"{sample.key}: {kind}, {len(factors)} amplification factors{colours}"
        path = figures.sequence_figure(frames, factors, title, fig_dir / "sequence.png")
        blocks.append(Figure(path, f"The sequence rebuilt by magnification for `{sample.key}`, one frame per amplification factor a"))
    else:
        blocks.append(
            Paragraph(
                "The magnified sequence of this sample is left out (`--omit-data-images`) because it shows images "
                "derived from the dataset; run `uamrn report` without that option to draw it."
            )
        )

    try:
        attention, prediction = sample_attention(run, sample, sample_set.class_names)
    except (FileNotFoundError, ValueError) as err:
        log.warning("attention figure skipped: %s", err)
        blocks.append(Paragraph(f"Attention figure skipped: {err}"))
        return blocks

    if not row.empty and row.iloc[0]["pred_name"] != prediction["pred_name"]:
        blocks.append(
            Paragraph(
                f"Warning: the reloaded fold model predicts {prediction['pred_name']}, but predictions.csv records "
                f"{row.iloc[0]['pred_name']}; the model file may not belong to this run."
            )
        )
    cfg_model = cfg.model
    title = (
        f"{sample.key} (true {true_name}, predicted {prediction['pred_name']}, gamma {prediction['gamma']:.3f}): "
        f"{cfg_model.attention} attention, {cfg_model.n_tables} hash tables x {cfg_model.n_hyperplanes} hyperplanes"
    )
    path = figures.attention_figure(attention, factors, title, fig_dir / "attention.png")
    blocks.append(
        Figure(
            path,
            "Attention weights of every block and head for this sample in eval mode, frames ordered by "
            "amplification factor. Zero weights are key frames outside the query's LSH buckets; a row "
            "of zeros is a query frame that attends to nothing.",
        )
    )
    return blocks
