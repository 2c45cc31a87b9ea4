# SPDX-License-Identifier: GPL-2.0-or-later
"""Run report: one self-contained HTML file with the parameters, timing, convergence plots and self-validation.

Plots and previews are PNG images drawn with Matplotlib's Agg renderer (no
pyplot, so no GUI backend is touched inside QGIS) and embedded as base64 data
URLs: the file needs nothing else to open in any browser.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave

if TYPE_CHECKING:
    from ..model.fitting import TracePoint
    from .self_validation import Validation

__all__ = ["write_report"]

LINE_COLOUR = "#1f77b4"
CHOSEN_COLOUR = "#d62728"
MASK_COLOUR = (255, 140, 0)  # orange: masked / hidden pixels
CLEAR_COLOUR = (40, 40, 40)
PREVIEW_PIXELS = 256  # longest side of a preview, on disk and on screen
STRETCH = (2.0, 98.0)  # percentiles mapped to black and white

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; background: #fff; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure.plot { display: block; margin: 0.5em 0; }
figure.plot img { max-width: 100%; height: auto; }
figure.preview img { image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.9em; color: #555; }
"""


def write_report(
    path: str | os.PathLike,
    *,
    title: str,
    parameters: Mapping[str, object],
    device: str,
    seconds: float,
    trace: Sequence[TracePoint],
    chosen_step: int,
    validation: Validation | None = None,
    previews: Mapping[str, np.ndarray] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write the report to ``path`` atomically and return the path.

    ``previews`` maps a caption to a ``(B, H, W)`` image (the first three bands
    are shown as red, green, blue; fewer bands as grey from the first; each
    band stretched between its 2nd and 98th percentile, NaN black) or to a
    boolean ``(H, W)`` mask (True in orange).
    """
    sections = [
        f"<h1>{_text(title)}</h1>",
        "<h2>Parameters</h2>",
        _table(["Parameter", "Value"], [[name, _plain(value)] for name, value in parameters.items()]),
        "<h2>Run</h2>",
        _table(None, [["Device", device], ["Fitting time", f"{seconds:.1f} s"], ["Chosen step", chosen_step]]),
        "<h2>Convergence</h2>",
        _convergence(trace, chosen_step),
    ]
    if validation is not None:
        sections += ["<h2>Self-validation</h2>", _validation(validation)]
    if previews:
        sections += ["<h2>Previews</h2>", "".join(_preview(image, name) for name, image in previews.items())]
    if notes:
        sections += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{_text(note)}</li>" for note in notes) + "</ul>"]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )
    return _write_atomically(Path(path), page)


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _plain(value: object) -> str:
    """A parameter value as a person writes it: no Python quotes or brackets, "yes"/"no", lists with commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(item) for item in value)
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":  # a Python literal such as '1' or ''
        text = text[1:-1]
    return text


def _table(header: list[str] | None, rows: list[list[object]], numeric: bool = False) -> str:
    """An HTML table; with ``numeric`` every cell after the first is right-aligned."""
    head = "<tr>" + "".join(f"<th>{_text(h)}</th>" for h in header) + "</tr>" if header else ""
    cell = '<td class="number">{}</td>' if numeric else "<td>{}</td>"
    body = "".join(
        f"<tr><td>{_text(row[0])}</td>" + "".join(cell.format(_text(value)) for value in row[1:]) + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def _figure(png: bytes, caption: str, kind: str, size: tuple[int, int] | None = None) -> str:
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    dimensions = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return (
        f'<figure class="{kind}"><img src="{source}" alt="{_text(caption)}"{dimensions}>'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
    )


def _convergence(trace: Sequence[TracePoint], chosen_step: int) -> str:
    """The loss, known-region RMSE and (when recorded) patch-consistency curves, chosen step marked."""
    if not trace:
        return "<p>No convergence trace: nothing was fitted.</p>"
    if len({p.step for p in trace}) < 2:  # one point on an axis of its own would be drawn on a degenerate scale
        rows = [
            [
                p.step,
                f"{p.loss:.4g}",
                f"{p.known_rmse:.4g}",
                "" if p.patch_consistency is None else f"{p.patch_consistency:.4g}",
            ]
            for p in trace
        ]
        return "<p>Too few checked steps to plot (a short run): the values at the checked step are below.</p>" + _table(
            ["Step", "Training loss", "Known-region RMSE", "Patch consistency"], rows, numeric=True
        )
    curves = (
        ("Training loss", "loss"),
        ("Known-region RMSE (normalised units)", "known_rmse"),
        ("Patch consistency (lower is better)", "patch_consistency"),
        ("Held-out similarity (higher is better)", "holdout_ssim"),
    )
    panels = []
    for name, field in curves:
        points = [(p.step, getattr(p, field)) for p in trace if _finite(getattr(p, field))]
        if points:  # the loss has no value at step 0 (the anchor), a rule's score only when it is recorded
            panels.append((name, [x for x, _ in points], [y for _, y in points]))
    figure = Figure(figsize=(min(3.6 * len(panels), 10.5), 3.4), dpi=100, layout="constrained")
    for index, (name, x, y) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        axes.plot(x, y, color=LINE_COLOUR, linewidth=2, marker="o" if len(x) < 30 else None)
        axes.axvline(chosen_step, color=CHOSEN_COLOUR, linestyle="--", label=f"chosen step {chosen_step}")
        if min(y) > 0 and max(y) > 10 * min(y):
            axes.set_yscale("log")
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    return _figure(_figure_png(figure), "Convergence; the dashed line marks the step whose output is kept", "plot")


def _finite(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value))


def _validation(validation: Validation) -> str:
    """The table of MCPN, the instant estimate it starts from (when scored) and GDAL Fill nodata, per-band scores
    and the synthetic clouds."""
    count = validation.hidden_pixels
    fills = [("MCPN", "MCPN", validation.mcpn_ssim, validation.mcpn_rmse,
              validation.mcpn_band_ssim, validation.mcpn_band_rmse)]  # fmt: skip
    if validation.instant_ssim is not None:
        fills.append(("Instant estimate the fit starts from", "Instant", validation.instant_ssim,
                      validation.instant_rmse, validation.instant_band_ssim, validation.instant_band_rmse))  # fmt: skip
    fills.append(("GDAL Fill nodata", "GDAL", validation.gdal_ssim, validation.gdal_rmse,
                  validation.gdal_band_ssim, validation.gdal_band_rmse))  # fmt: skip
    summary = _table(
        ["Method", "SSIM (higher is better)", "RMSE (target units)", "Hidden pixels"],
        [[name, f"{ssim:.4f}", f"{error:.4g}", count] for name, _, ssim, error, _, _ in fills],
        numeric=True,
    )
    bands = _table(
        ["Band", *(f"{short} SSIM" for _, short, *_ in fills), *(f"{short} RMSE" for _, short, *_ in fills)],
        [
            [band + 1, *(f"{f[4][band]:.4f}" for f in fills), *(f"{f[5][band]:.4g}" for f in fills)]
            for band in range(len(validation.mcpn_band_ssim))
        ],
        numeric=True,
    )
    explanation = (
        "<p>Clear pixels were hidden under synthetic clouds shaped like the real ones and filled the same way; "
        "the scores compare the fills with the true values of those pixels, an estimate of the quality of the "
        "real fill on this scene.</p>"
    )
    if validation.instant_ssim is not None:
        explanation += (
            "<p>The instant estimate is the fill the network starts from and corrects: MCPN's gain over it is "
            "what the network added over the best instant tool on this scene.</p>"
        )
    hidden = _preview(validation.hidden, "Synthetic clouds (orange)")
    notes = "".join(f"<p>{_text(note)}</p>" for note in validation.notes)
    return explanation + summary + "<h3>Per band</h3>" + bands + hidden + notes


def _figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _preview(array: np.ndarray, caption: str) -> str:
    """A figure with a small PNG of an image (RGB or grey, stretched) or of a boolean mask (True in orange)."""
    array = np.asarray(array)
    if array.dtype == bool:
        mask = array if array.ndim == 2 else array.any(axis=0)
        rgb = np.where(mask[..., None], np.array(MASK_COLOUR, np.uint8), np.array(CLEAR_COLOUR, np.uint8))
    else:
        bands = array[None] if array.ndim == 2 else array
        bands = bands[:3] if bands.shape[0] >= 3 else bands[:1].repeat(3, axis=0)
        rgb = np.stack([_stretch(band) for band in bands], axis=-1)
    height, width = rgb.shape[:2]
    step = max(1, -(-max(height, width) // PREVIEW_PIXELS))
    buffer = io.BytesIO()
    imsave(buffer, np.ascontiguousarray(rgb[::step, ::step]), format="png")
    scale = PREVIEW_PIXELS / max(height, width)
    return _figure(buffer.getvalue(), caption, "preview", (round(width * scale), round(height * scale)))


def _stretch(band: np.ndarray) -> np.ndarray:
    """uint8 band: percentiles ``STRETCH`` of the finite pixels to 0 and 255, NaN to 0."""
    band = band.astype(np.float64)
    finite = np.isfinite(band)
    if not finite.any():
        return np.zeros(band.shape, np.uint8)
    low, high = np.percentile(band[finite], STRETCH)
    scaled = (band - low) / (high - low) if high > low else np.zeros_like(band)
    return (np.clip(np.nan_to_num(scaled, nan=0.0), 0, 1) * 255).round().astype(np.uint8)


def _write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
