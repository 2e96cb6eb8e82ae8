"""Section (c): preprocessing throughput, face crop and magnification, in frames per second."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from timing import best_time

logger = logging.getLogger(__name__)

CASME2_PAIR = ("casme2_sub01_EP02_01f/onset_reg_img46.jpg", "casme2_sub01_EP02_01f/apex_reg_img59.jpg")
FRLL_PAIR = ("frll_london/neutral_front/001_03.jpg", "frll_london/smiling_front/001_08.jpg")
LEARNED_WEIGHTS = "casme2_sub01_EP02_01f/learned_magnifier/learning_based_mag.pth.tar"
FLOW_IMAGE_GLOB = "megc2019/flow/*.png"


def _read(path: Path) -> np.ndarray:
    from uamrn.train.features import read_rgb

    return read_rgb(path)


def measure(data_dir: Path, *, quick: bool = False) -> dict:
    """Measure crop and magnification speed on real frames from ``data_dir``.

    Returns:
        Dict of ``name -> {"frames_per_s": float, "detail": str}``, or ``{"skipped": reason}``.
    """
    from uamrn.config import SequenceConfig
    from uamrn.face.crop import crop_pair
    from uamrn.magnify.linear import magnify_linear

    factors = SequenceConfig().factors()
    repeats = 1 if quick else 3
    results = {}

    for name, pair in (("crop CASME II pair (231 x 282)", CASME2_PAIR), ("crop FRLL pair (1350 x 1350)", FRLL_PAIR)):
        paths = [data_dir / part for part in pair]
        if not all(path.is_file() for path in paths):
            results[name] = {"skipped": f"real frames not found: {paths[0]}"}
            continue
        onset, apex = (_read(path) for path in paths)
        seconds = best_time(lambda: crop_pair(onset, apex, size=224), repeats=repeats)
        results[name] = {"frames_per_s": 2 / seconds, "detail": f"{seconds * 1000:.0f} ms per onset/apex pair (2 frames)"}

    onset, apex = (_read(data_dir / part) for part in CASME2_PAIR)
    cropped = crop_pair(onset, apex, size=224)
    seconds = best_time(lambda: magnify_linear(cropped.onset, cropped.apex, factors), repeats=repeats)
    results["linear magnification (224 x 224)"] = {
        "frames_per_s": len(factors) / seconds, "detail": f"{seconds * 1000:.1f} ms for {len(factors)} factors"}

    flows = sorted(data_dir.glob(FLOW_IMAGE_GLOB))
    if flows:
        from uamrn.magnify.motion import magnify_flow

        flow = _read(flows[0])
        seconds = best_time(lambda: magnify_flow(flow, factors), repeats=repeats)
        results["motion-domain magnification (28 x 28 flow)"] = {
            "frames_per_s": len(factors) / seconds, "detail": f"{seconds * 1000:.2f} ms for {len(factors)} factors"}
    else:
        results["motion-domain magnification (28 x 28 flow)"] = {"skipped": f"no flow images under {data_dir}"}

    weights = data_dir / LEARNED_WEIGHTS
    name = "learned magnification (Oh et al., 384 x 384 network input)"
    if weights.is_file():
        from uamrn.magnify.learned import LearnedMagnifier

        magnifier = LearnedMagnifier.from_file(weights)
        learned_factors = factors[:4] if quick else factors[:8]
        start = time.perf_counter()
        magnifier.magnify(cropped.onset, cropped.apex, learned_factors)
        seconds = time.perf_counter() - start
        results[name] = {"frames_per_s": len(learned_factors) / seconds,
                         "detail": f"{seconds:.1f} s for {len(learned_factors)} factors (one run)"}
    else:
        results[name] = {"skipped": f"weights not found: {weights}"}
    return results


def render(results: dict) -> str:
    lines = [
        "Real frames from the shared data folder; best of 3 runs (1 for the learned magnifier). The crop includes "
        "dlib HOG face detection and the 68 landmarks on the onset. Magnification is from the cropped 224 x 224 pair.",
        "",
        "| step | frames/s | detail |",
        "|---|---|---|",
    ]
    for name, result in results.items():
        if "skipped" in result:
            lines.append(f"| {name} | not measured | {result['skipped']} |")
        else:
            lines.append(f"| {name} | {result['frames_per_s']:.1f} | {result['detail']} |")
    return "\n".join(lines) + "\n"
