"""Section (d): ``uamrn predict`` latency on one onset/apex pair after the model is loaded."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from timing import best_time

logger = logging.getLogger(__name__)

PAIR = ("casme2_sub01_EP02_01f/onset_reg_img46.jpg", "casme2_sub01_EP02_01f/apex_reg_img59.jpg")
LEARNED_WEIGHTS = "casme2_sub01_EP02_01f/learned_magnifier/learning_based_mag.pth.tar"
CLASSES = ("negative", "positive", "surprise")


def _cpu_model_config():
    """Return the model config ``uamrn evaluate`` uses by default (the ``cpu`` preset)."""
    from uamrn.cli import build_parser
    from uamrn.commands.evaluate import build_config

    args = build_parser().parse_args(["evaluate", "--dataset", "demo", "--out", "unused"])
    return build_config(args).model


def _write_model(folder: Path, magnifier: str, weights: Path | None, model_cfg) -> None:
    """Save an untrained model that reads frames; latency does not depend on the weight values."""
    import torch

    from uamrn.config import DataConfig, FrontEndConfig, RunConfig, SequenceConfig
    from uamrn.nn import UAMRN, build_frontend
    from uamrn.train.runio import ModelMeta, save_model

    cfg = RunConfig(
        data=DataConfig(dataset="demo", input="frames"),
        sequence=SequenceConfig(magnifier=magnifier, learned_weights=weights),
        frontend=FrontEndConfig(),
        model=model_cfg,
    )
    in_features = build_frontend(cfg.frontend).feature_dim
    torch.manual_seed(0)
    model = UAMRN(cfg.model, in_features, len(CLASSES))
    meta = ModelMeta(
        config=cfg,
        in_features=in_features,
        class_names=CLASSES,
        feature_mean=np.zeros(in_features, dtype=np.float32),
        feature_std=np.ones(in_features, dtype=np.float32),
    )
    save_model(folder, model, meta)


def measure(data_dir: Path, *, quick: bool = False) -> dict:
    """Time ``Predictor.predict`` on a real CASME II pair for the linear and the learned magnifier.

    Returns:
        Dict of ``name -> {"seconds": float, "detail": str}`` or ``{"skipped": reason}``.
    """
    from uamrn.api import Predictor
    from uamrn.config import paper_model

    onset, apex = (data_dir / part for part in PAIR)
    if not (onset.is_file() and apex.is_file()):
        return {"all": {"skipped": f"real pair not found: {onset}"}}

    weights = data_dir / LEARNED_WEIGHTS
    cases = [
        ("linear magnifier, cpu preset model", "linear", None, _cpu_model_config(), 3),
        ("linear magnifier, paper-size model", "linear", None, paper_model(), 3),
        ("learned magnifier, cpu preset model", "learned", weights, _cpu_model_config(), 1),
    ]
    results = {}
    with tempfile.TemporaryDirectory(prefix="uamrn-bench-predict-") as work:
        for index, (name, magnifier, magnifier_weights, model_cfg, repeats) in enumerate(cases):
            if magnifier == "learned" and (quick or not weights.is_file()):
                reason = "skipped in --quick mode" if quick else f"weights not found: {weights}"
                results[name] = {"skipped": reason}
                continue
            folder = Path(work) / f"model{index}"
            _write_model(folder, magnifier, magnifier_weights, model_cfg)

            start = time.perf_counter()
            predictor = Predictor.load(folder)
            load_s = time.perf_counter() - start
            if repeats > 1:
                seconds = best_time(lambda: predictor.predict(onset, apex), repeats=1 if quick else repeats, warmup=1)
                detail = f"best of {1 if quick else repeats} after a warm-up call"
            else:
                start = time.perf_counter()
                predictor.predict(onset, apex)
                seconds = time.perf_counter() - start
                detail = "one call (includes first-call set-up)"
            results[name] = {"seconds": seconds, "detail": f"{detail}; model load {load_s:.2f} s; d_model {model_cfg.d_model}, M = {model_cfg.mc_samples}"}

    results["breakdown"] = _breakdown(onset, apex, quick)
    return results


def _breakdown(onset_path: Path, apex_path: Path, quick: bool) -> dict:
    """Time the two largest steps of a prediction on their own: the face crop and the front end."""
    import torch

    from uamrn.config import FrontEndConfig
    from uamrn.face.crop import crop_pair
    from uamrn.nn import build_frontend
    from uamrn.train.features import read_rgb

    repeats = 1 if quick else 3
    onset, apex = read_rgb(onset_path), read_rgb(apex_path)
    crop_s = best_time(lambda: crop_pair(onset, apex, size=224), repeats=repeats)
    frontend = build_frontend(FrontEndConfig())
    frames = torch.rand(32, 3, 224, 224)
    with torch.no_grad():
        frontend_s = best_time(lambda: frontend(frames), repeats=repeats)
    return {"crop_s": crop_s, "frontend_s": frontend_s}


def render(results: dict) -> str:
    lines = [
        "`uamrn.api.Predictor.predict` (what `uamrn predict --onset --apex` runs before drawing its figure) on the "
        "real CASME II pair sub01/EP02_01f (231 x 282): read both images, dlib face detection and landmarks, crop "
        "to 224 x 224, 32 magnified frames, the default front end (mini_xception), the network in eval mode. "
        "The models are untrained, which does not change the amount of work.",
        "",
        "| case | latency | detail |",
        "|---|---|---|",
    ]
    for name, result in results.items():
        if name == "breakdown":
            continue
        if "skipped" in result:
            lines.append(f"| {name} | not measured | {result['skipped']} |")
        else:
            lines.append(f"| {name} | {result['seconds']:.2f} s | {result['detail']} |")
    breakdown = results.get("breakdown")
    if breakdown:
        lines += [
            "",
            f"Measured alone in the same section: the face crop of the pair (dlib detection and landmarks on the "
            f"onset, 224 x 224 crop) takes {breakdown['crop_s']:.2f} s and the default front end on the 32 frames "
            f"{breakdown['frontend_s']:.2f} s.",
        ]
    return "\n".join(lines) + "\n"


def targets(results: dict | None) -> list[tuple[str, str, bool | None]]:
    label = "predict latency, linear magnifier + default front end, <= 0.5 s"
    result = (results or {}).get("linear magnifier, cpu preset model")
    if not result or "seconds" not in result:
        return [(label, "not measured", None)]
    return [(label, f"{result['seconds']:.2f} s", result["seconds"] <= 0.5)]
