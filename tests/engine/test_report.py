# SPDX-License-Identifier: GPL-2.0-or-later
"""The HTML run report (core.trust.report): well-formed, self-contained, escaped, atomic, and rendered by Chromium."""

from __future__ import annotations

import base64
import io
import os
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from mcpn.core.model.fitting import TracePoint
from mcpn.core.trust import report
from mcpn.core.trust.report import CHOSEN_COLOUR, LINE_COLOUR, MASK_COLOUR, write_report
from mcpn.core.trust.self_validation import Validation
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
VOID = {"meta", "img", "br", "hr", "link", "input"}
TITLE = 'Cloud fill <script>alert("x")</script> & more'


class Page(HTMLParser):
    """Parses a report, checking that every element is closed in order, and collects what the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.doctype = ""
        self.images: list[dict[str, str]] = []
        self.texts: dict[str, list[str]] = {}
        self.rows: list[list[str]] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed elements: {self.stack}"

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, _ in attrs:
            assert name not in ("href", "srcset") and not name.startswith("on"), f"{tag} has {name}"
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})
        if tag == "tr":
            self.rows.append([])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and data.strip():
            self.texts.setdefault(self.stack[-1], []).append(data.strip())
            if self.stack[-1] in ("td", "th"):
                self.rows[-1].append(data.strip())


def png(image: dict[str, str]) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix) :]))).convert("RGB"))


def colour(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def near(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> np.ndarray:
    return (np.abs(pixels[..., :3].astype(int) - np.array(rgb)) <= tolerance).all(axis=-1)


def trace(patch_consistency: bool = True) -> list[TracePoint]:
    return [
        TracePoint(step, 2.0 / step, 0.4 / np.sqrt(step), 5.0 - step / 100 if patch_consistency else None)
        for step in range(20, 401, 20)
    ]


def validation() -> Validation:
    hidden = np.zeros((48, 48), bool)
    hidden[5:15, 30:40] = True
    return Validation(
        hidden=hidden,
        mcpn_ssim=0.87654,
        mcpn_rmse=123.456,
        gdal_ssim=0.54321,
        gdal_rmse=345.678,
        mcpn_band_ssim=[0.9, 0.8],
        mcpn_band_rmse=[100.0, 140.0],
        gdal_band_ssim=[0.5, 0.6],
        gdal_band_rmse=[300.0, 390.0],
        notes=["synthetic clouds shaped like the real clouds: 100 of 2304 pixels hidden"],
    )


def previews() -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:48, 0:48]
    image = np.stack([x * 10.0, y * 10.0, (x + y) * 5.0])
    mask = (x - 20) ** 2 + (y - 24) ** 2 < 100
    return {"input": np.where(mask, np.nan, image), "cloud mask": mask, "output": image[:1]}


def write(path: Path, **changes) -> Path:
    arguments = dict(
        title=TITLE,
        parameters={"Method": "emergent", "Steps": 400, "Guides": "<older image> & radar"},
        device="cuda:0 (NVIDIA H200)",
        seconds=12.345,
        trace=trace(),
        chosen_step=300,
        validation=validation(),
        previews=previews(),
        notes=["tiled: 1 of 4 tiles had gaps & were fitted"],
    )
    arguments.update(changes)
    return write_report(path, **arguments)


def test_report_is_valid_self_contained_html(tmp_path) -> None:
    path = write(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.doctype.lower() == "doctype html"
    assert page.tags[:4] == ["html", "head", "meta", "title"] and "body" in page.tags
    assert "script" not in page.tags and "link" not in page.tags
    assert page.texts["title"] == [TITLE] and page.texts["h1"] == [TITLE]
    assert page.texts["h2"] == ["Parameters", "Run", "Convergence", "Self-validation", "Previews", "Notes"]
    assert ["Guides", "<older image> & radar"] in page.rows and ["Steps", "400"] in page.rows
    assert ["Device", "cuda:0 (NVIDIA H200)"] in page.rows and ["Fitting time", "12.3 s"] in page.rows
    assert ["Chosen step", "300"] in page.rows
    assert page.texts["li"] == ["tiled: 1 of 4 tiles had gaps & were fitted"]
    # Only embedded PNGs: plot, synthetic clouds, three previews.
    assert len(page.images) == 5 and all(png(image).size for image in page.images)
    assert [image["alt"] for image in page.images[2:]] == ["input", "cloud mask", "output"]


def test_report_has_the_validation_figures(tmp_path) -> None:
    page = Page(write(tmp_path / "report.html").read_text(encoding="utf-8"))
    assert ["MCPN", "0.8765", "123.5", "100"] in page.rows
    assert ["GDAL Fill nodata", "0.5432", "345.7", "100"] in page.rows
    assert ["1", "0.9000", "0.5000", "100", "300"] in page.rows
    assert ["2", "0.8000", "0.6000", "140", "390"] in page.rows
    hidden = png(page.images[1])
    assert np.array_equal(near(hidden, MASK_COLOUR, 0), validation().hidden)
    assert "synthetic clouds shaped like the real clouds: 100 of 2304 pixels hidden" in page.texts["p"]


def test_report_scores_the_instant_estimate_beside_gdal_fill_nodata(tmp_path) -> None:
    """Where self-validation scored the instant estimate the fit starts from, the report shows it between MCPN and
    GDAL Fill nodata, also per band, and says what the difference means."""
    scored = replace(validation(), instant_ssim=0.7, instant_rmse=200.0, instant_band_ssim=[0.75, 0.65],
                     instant_band_rmse=[180.0, 220.0])  # fmt: skip
    page = Page(write(tmp_path / "report.html", validation=scored).read_text(encoding="utf-8"))
    methods = [row[0] for row in page.rows if row and row[-1] == "100" and len(row) == 4]
    assert methods == ["MCPN", "Instant estimate the fit starts from", "GDAL Fill nodata"]
    assert ["Instant estimate the fit starts from", "0.7000", "200", "100"] in page.rows
    assert ["1", "0.9000", "0.7500", "0.5000", "100", "180", "300"] in page.rows
    assert any("what the network added over the best instant tool" in text for text in page.texts["p"])
    plain = Page(write(tmp_path / "plain.html").read_text(encoding="utf-8"))
    assert not any(row and row[0].startswith("Instant") for row in plain.rows)


def test_convergence_plot(tmp_path) -> None:
    page = Page(write(tmp_path / "report.html").read_text(encoding="utf-8"))
    plot = png(page.images[0])
    assert near(plot, colour(LINE_COLOUR), 0).sum() > 500
    # The dashed chosen-step line: one vertical run of its colour in each of the three panels.
    columns = np.flatnonzero(near(plot, colour(CHOSEN_COLOUR), 0).sum(axis=0) > 50)
    assert len(np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)) == 3
    # Without patch consistency the plot has two panels: narrower.
    page = Page(write(tmp_path / "two.html", trace=trace(False)).read_text(encoding="utf-8"))
    assert png(page.images[0]).shape[1] < 0.8 * plot.shape[1]
    # Nothing fitted: a sentence, no plot.
    page = Page(write(tmp_path / "none.html", trace=[], chosen_step=0, validation=None).read_text(encoding="utf-8"))
    assert "No convergence trace: nothing was fitted." in page.texts["p"]
    assert "Self-validation" not in page.texts["h2"] and len(page.images) == 3


def test_previews(tmp_path) -> None:
    page = Page(write(tmp_path / "report.html").read_text(encoding="utf-8"))
    rgb, mask, grey = (png(image) for image in page.images[2:])
    expected = previews()
    assert rgb.shape == mask.shape == grey.shape == (48, 48, 3)
    assert (rgb[expected["cloud mask"]] == 0).all()  # NaN shown black
    assert rgb[:, :, 0].std() > 50 and (np.diff(rgb[40, :, 0].astype(int)) >= 0).all()  # red follows x
    assert np.array_equal(near(mask, MASK_COLOUR, 0), expected["cloud mask"])
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert all(image["width"] == "256" for image in page.images[2:])
    # Large rasters are decimated to at most 256 px.
    large = Page(write(tmp_path / "large.html", previews={"big": np.ones((3, 1000, 600))}).read_text())
    assert max(png(large.images[-1]).shape[:2]) <= 256


def test_writing_is_atomic(tmp_path, monkeypatch) -> None:
    path = tmp_path / "out" / "report.html"
    write(path)
    before = path.read_text(encoding="utf-8")
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(report.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write(path, title="another title")
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def screenshot(html: Path, folder: Path) -> np.ndarray:
    """Render ``html`` in headless Chromium and return the screenshot (RGB)."""
    if not CHROMIUM.exists():  # `make venv` installs it, so CI (CI=true) has it: there its absence fails
        message = f"{CHROMIUM} not found: `make venv` installs Chromium to render the report (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    shot = folder / f"{html.stem}.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={folder / 'chromium-profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        html.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(folder)})
    return np.asarray(Image.open(shot).convert("RGB"))


def test_chromium_renders_the_plot(tmp_path) -> None:
    plain = {"previews": {"mask": previews()["cloud mask"]}}
    with_plot = screenshot(write(tmp_path / "with_plot.html", **plain), tmp_path)
    without = screenshot(write(tmp_path / "without.html", trace=[], **plain), tmp_path)
    assert with_plot.shape == (2000, 1200, 3)
    line = near(with_plot, colour(LINE_COLOUR))
    assert line.sum() > 500 and near(with_plot, colour(CHOSEN_COLOUR)).sum() > 100
    rows, cols = np.nonzero(line)
    assert cols.max() - cols.min() > 600  # the curves span the three panels
    assert near(without, colour(LINE_COLOUR)).sum() < 20
    # The validation table and the mask preview are drawn too (below the plot).
    orange = np.nonzero(near(with_plot, MASK_COLOUR))[0]
    assert len(orange) > 1000 and orange.min() > rows.max()


def test_short_run_and_plain_parameter_values(tmp_path) -> None:
    """One checked step: a sentence and a table, no plot on a degenerate axis; values without Python quotes."""
    one = [TracePoint(3, 0.5, 0.25, None)]
    parameters = {"Mask values meaning cloud": "'1'", "Dask": "''", "Guides": ["a.tif", "b.tif"], "Self": False}
    page = Page(write(tmp_path / "short.html", trace=one, chosen_step=3, parameters=parameters).read_text())
    assert "Too few checked steps to plot (a short run): the values at the checked step are below." in page.texts["p"]
    assert ["3", "0.5", "0.25"] in page.rows  # (empty cells are not collected)
    assert len(page.images) == 5 - 1  # no convergence plot
    assert ["Mask values meaning cloud", "1"] in page.rows and ["Dask"] in page.rows
    assert ["Guides", "a.tif, b.tif"] in page.rows and ["Self", "no"] in page.rows
