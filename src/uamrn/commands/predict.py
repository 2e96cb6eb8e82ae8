"""`uamrn predict`: classify an onset/apex pair or a clip with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from uamrn.cli import UsageError

__all__ = ["register", "run", "format_prediction"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify an onset/apex pair or a clip with a trained model",
        description=(
            "Print the predicted class, the class probabilities and the uncertainty gamma, and "
            "write a PNG with the magnified sequence and the attention maps."
        ),
    )
    parser.add_argument("--model", type=Path, required=True,
                        help="run directory of uamrn evaluate or uamrn demo (uses its final/ model), or a model folder")
    parser.add_argument("--onset", type=Path, help="onset frame image")
    parser.add_argument("--apex", type=Path, help="apex frame image")
    parser.add_argument("--clip", type=Path, help="folder of frame images or a video file; the first frame is the onset")
    parser.add_argument("--apex-index", type=int,
                        help="index of the apex frame in --clip, 0-based; spotted as the frame most different from the onset when not given")
    parser.add_argument("--out", type=Path, default=Path("prediction.png"), help="PNG figure to write (default: prediction.png)")
    parser.set_defaults(func=run)


def format_prediction(prediction) -> str:
    """Format a prediction as a few lines: label, probability per class, gamma."""
    width = max(len(name) for name in prediction.class_names)
    lines = [f"label: {prediction.label}"]
    if prediction.apex_index is not None:
        lines.append(f"apex frame: {prediction.apex_index}")
    lines.append("probabilities:")
    for name, probability in prediction.probabilities.items():
        marker = "  <" if name == prediction.label else ""
        lines.append(f"  {name:<{width}}  {probability:.3f}{marker}")
    lines.append(f"gamma (uncertainty): {prediction.gamma:.4g}")
    return "\n".join(lines)


def _check_inputs(args: argparse.Namespace) -> None:
    pair = args.onset is not None or args.apex is not None
    if pair and args.clip is not None:
        raise UsageError("give either --onset and --apex, or --clip, not both")
    if not pair and args.clip is None:
        raise UsageError("nothing to classify; give --onset A --apex B, or --clip FOLDER_OR_VIDEO")
    if pair and (args.onset is None or args.apex is None):
        missing = "--apex" if args.apex is None else "--onset"
        raise UsageError(f"{missing} is missing; a pair needs both --onset and --apex")
    if args.apex_index is not None and args.clip is None:
        raise UsageError("--apex-index applies to --clip only")


def run(args: argparse.Namespace) -> int:
    from uamrn.api import Predictor, save_figure

    _check_inputs(args)
    predictor = Predictor.load(args.model)
    # FaceNotFoundError is a ValueError, so a frame without a face ends as one error line.
    if args.clip is not None:
        prediction = predictor.predict_clip(args.clip, args.apex_index)
        title = args.clip.name
    else:
        prediction = predictor.predict(args.onset, args.apex)
        title = args.apex.name

    print(format_prediction(prediction))
    figure = save_figure(prediction, args.out, title=title)
    print(f"figure: {figure}")
    return 0
