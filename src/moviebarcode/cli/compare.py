"""``moviebarcode compare``: two films' barcodes side by side, and how alike they are."""

from __future__ import annotations

import json
from pathlib import Path

import click

from moviebarcode.choices import AlignMethod
from moviebarcode.cli._common import choice, friendly_errors
from moviebarcode.compare import CompareOptions, compare_image
from moviebarcode.compare import compare as run_compare
from moviebarcode.errors import InputError
from moviebarcode.image import atomic_output
from moviebarcode.render import check_writable

_OPTS = CompareOptions()


@click.command()
@click.argument("store_a", type=click.Path(path_type=Path))
@click.argument("store_b", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PNG",
    help="Also draw both barcodes on one time axis, the matched stretches joined between.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also write the metrics, the aligned time pairs and the stretches as JSON.",
)
@click.option(
    "--method",
    type=choice(AlignMethod),
    default=_OPTS.method,
    show_default=True,
    help="Sequence alignment: local (Smith-Waterman: the best matching stretch) or global "
    "(Needleman-Wunsch: end to end).",
)
@click.option("-q", "--quiet", is_flag=True, help="No table on stdout.")
@friendly_errors
def compare(store_a, store_b, output, json_path, method, quiet):
    """Compare the barcodes of two frame stores made by `prep`: two films, two cuts of one
    film, two grades, two copies.

    \b
    NRMSE and SSIM   the barcodes resampled to a common length (scikit-image)
    best lag         the time shift that correlates best: B(t) ~ A(t - lag)
    alignment        Smith-Waterman or Needleman-Wunsch on hue and brightness strings

    Average colours are cached in each store (written when it can be).
    """
    opts = CompareOptions(method=method)
    for path, suffix in ((output, ".png"), (json_path, None)):
        if path is not None:
            if suffix and path.suffix.lower() != suffix:
                raise InputError(f"{path}: the image is written as PNG; give a .png file name")
            check_writable(path)
    result = run_compare(store_a, store_b, opts)
    if output is not None:
        _write(output, lambda tmp: compare_image(result).save(tmp, format="PNG"))
    if json_path is not None:
        text = json.dumps(result.to_dict(), indent=1)
        _write(json_path, lambda tmp: tmp.write_text(text))
    if not quiet:
        click.echo(result.report())


def _write(path: Path, write) -> None:
    try:
        with atomic_output(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from None
