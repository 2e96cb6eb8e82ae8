"""`uamrn report`: tables and figures from finished LOSO runs or an ablation directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from uamrn.cli import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a Markdown and HTML report from run directories",
        description=(
            "Write report.md, report.html (figures embedded) and figures/*.png from LOSO run "
            "directories (`uamrn evaluate --out`) or ablation directories (`uamrn ablate --out`). "
            "Runs named <variant>/seed<k> are grouped as seeds of one variant."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run or ablation directories")
    parser.add_argument("--out", type=Path, help="report folder (default: RUN_DIR/report for one RUN_DIR)")
    parser.add_argument(
        "--sample",
        metavar="DATABASE/SUBJECT/CLIP",
        help="sample whose magnified sequence and attention are drawn (default: the first test sample)",
    )
    parser.add_argument(
        "--no-sample-figures",
        action="store_true",
        help="skip the per-sample figures, which need the dataset and the saved fold models",
    )
    parser.add_argument(
        "--omit-data-images",
        action="store_true",
        help="leave out figures made of dataset images (the magnified sequence), for reports published "
        "where the data licence forbids redistribution",
    )
    parser.add_argument("--no-html", action="store_true", help="write the Markdown report only")
    parser.add_argument("--title", help="report title (default: names the dataset)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uamrn.report.write import write_report

    if args.out is None:
        if len(args.runs) > 1:
            raise UsageError("several RUN_DIRs given without --out; name the report folder with --out DIR")
        args.out = args.runs[0] / "report"
    if args.sample is not None and args.sample.count("/") != 2:
        raise UsageError(f"--sample {args.sample!r} is not DATABASE/SUBJECT/CLIP, e.g. casme2/sub01/EP02_01f")

    files = write_report(
        args.runs,
        args.out,
        sample=args.sample,
        visuals=not args.no_sample_figures,
        html=not args.no_html,
        title=args.title,
        data_images=not args.omit_data_images,
    )
    print(f"report: {files.markdown}")
    if files.html is not None:
        print(f"html:   {files.html}")
    return 0
