# SPDX-License-Identifier: GPL-2.0-or-later
"""Release readiness (#17) and desktop details (#18): QGIS 4 compatibility layer, weights download hook,
help strings and tooltips, progress lines, early checks."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import threading
import urllib.error
from pathlib import Path

import pytest
import torch
from mcpn.algorithms import compat, network
from mcpn.algorithms.messages import ProgressReporter, duration
from mcpn.core.model import patch_consistency as pc
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayerType,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
)

INPAINT = "mcpn:guidedcloudinpainting"
SR = "mcpn:guidedsuperresolution"


# --- compatibility layer --------------------------------------------------------------------------
def test_compat_prefers_the_scoped_enum_when_it_exists():
    class Scoped:
        Raster = "new"

    class Holder:
        ProcessingSourceType = Scoped

    class Old:
        TypeRaster = "old"

    paths = ("Qgis.ProcessingSourceType.Raster", "QgsProcessing.TypeRaster")
    assert compat.pick(*paths, namespace={"Qgis": Holder, "QgsProcessing": Old}) == "new"  # QGIS 3.36+ / 4
    assert compat.pick(*paths, namespace={"Qgis": object, "QgsProcessing": Old}) == "old"  # QGIS 3.22
    assert compat.pick("Nothing.Here", "QgsProcessing.TypeRaster", namespace={"QgsProcessing": Old}) == "old"
    with pytest.raises(AttributeError, match="none of"):
        compat.pick("Qgis.NoSuchEnum.Value", namespace={"Qgis": Qgis})


def test_compat_values_match_this_qgis():
    assert QgsProcessingParameterNumber.Type.Integer == compat.NUMBER_INTEGER
    assert QgsProcessingParameterNumber.Type.Double == compat.NUMBER_DOUBLE
    assert QgsProcessing.SourceType.TypeRaster == compat.SOURCE_RASTER
    assert QgsProcessing.SourceType.TypeVectorPolygon == compat.SOURCE_VECTOR_POLYGON
    assert QgsProcessingParameterDefinition.Flag.FlagAdvanced == compat.FLAG_ADVANCED
    assert QgsMapLayerType.RasterLayer == compat.LAYER_RASTER
    assert Qgis.MessageLevel.Critical == compat.MESSAGE_CRITICAL and Qgis.MessageLevel.Info == compat.MESSAGE_INFO


# --- Inception weights: the download hook ---------------------------------------------------------
def fake_weights(tmp_path, monkeypatch):
    """A state dict saved to bytes and a URL whose file name carries its sha256 prefix (as torch.hub names)."""
    buffer = io.BytesIO()
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.ones(2)}, buffer)
    data = buffer.getvalue()
    url = f"https://example.invalid/models/inception_v3_google-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MCPN_OFFLINE", raising=False)
    monkeypatch.setattr(pc, "INCEPTION_URL", url)
    monkeypatch.setattr(pc, "_download_failed", False)
    monkeypatch.setattr(pc, "_downloader", None)
    return url, data


def test_installed_downloader_is_used_and_its_file_hash_checked(tmp_path, monkeypatch):
    url, data = fake_weights(tmp_path, monkeypatch)
    calls = []

    def downloader(source, destination):
        calls.append((source, destination))
        with open(destination, "wb") as stream:
            stream.write(data)

    pc.set_downloader(downloader)
    state = pc._cached_inception_state()
    assert torch.equal(state["Conv2d_1a_3x3.conv.weight"], torch.ones(2))
    assert len(calls) == 1 and calls[0][0] == url
    cached = tmp_path / "torch" / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    assert cached.is_file() and not any(p.name.endswith(".partial") for p in cached.parent.iterdir())
    assert pc._cached_inception_state() is not None and len(calls) == 1  # from the cache now


def test_bad_hash_falls_back_and_is_not_retried(tmp_path, monkeypatch):
    fake_weights(tmp_path, monkeypatch)
    calls = []

    def downloader(source, destination):
        calls.append(source)
        with open(destination, "wb") as stream:
            stream.write(b"not the weights")

    pc.set_downloader(downloader)
    assert pc._cached_inception_state() is None
    model, description = pc.load_feature_extractor()
    assert isinstance(model, pc.FilterBankFeatures) and "filter bank" in description
    assert len(calls) == 1  # not retried in the same process
    assert not list((tmp_path / "torch" / "hub" / "checkpoints").iterdir())  # nothing half-written left


def test_failing_downloader_falls_back(tmp_path, monkeypatch):
    fake_weights(tmp_path, monkeypatch)

    def downloader(source, destination):
        raise OSError("proxy refused")

    pc.set_downloader(downloader)
    assert pc._cached_inception_state() is None and pc._download_failed


def test_offline_switch_downloads_nothing(tmp_path, monkeypatch):
    fake_weights(tmp_path, monkeypatch)
    monkeypatch.setenv("MCPN_OFFLINE", "1")
    pc.set_downloader(lambda source, destination: pytest.fail("downloaded while MCPN_OFFLINE=1"))
    assert pc._cached_inception_state() is None
    monkeypatch.setattr(pc, "_downloader", None)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("torch.hub called"))
    assert pc._cached_inception_state() is None


def test_outside_qgis_torch_hub_checks_the_hash(tmp_path, monkeypatch):
    url, _ = fake_weights(tmp_path, monkeypatch)
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    assert pc._cached_inception_state() is None
    assert pc._cached_inception_state() is None  # no retry
    assert len(calls) == 1 and calls[0][0] == (url,)
    assert calls[0][1]["check_hash"] is True and calls[0][1]["map_location"] == "cpu"


def test_no_urllib_in_the_engine():
    source = Path(pc.__file__).read_text(encoding="utf-8")
    assert "urllib" not in source and "urlopen" not in source


def test_qgis_network_download(qgis_app, tmp_path):
    """QgsNetworkAccessManager (the user's proxy settings) over HTTP from a local server; errors raise OSError."""
    payload = b"weights" * 1000

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path != "/w.pth":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        network.download(f"{base}/w.pth", str(tmp_path / "w.pth"))
        assert (tmp_path / "w.pth").read_bytes() == payload
        with pytest.raises(OSError, match="cannot download"):
            network.download(f"{base}/missing.pth", str(tmp_path / "missing.pth"))
    finally:
        server.shutdown()
    with pytest.raises(OSError, match="cannot download"):
        network.download((tmp_path / "absent.bin").as_uri(), str(tmp_path / "x.bin"))


def test_running_the_engine_installs_the_qgis_downloader(mcpn_provider, monkeypatch):
    monkeypatch.setattr(pc, "_downloader", None)
    QgsApplication.processingRegistry().algorithmById(INPAINT).load_engine()
    assert pc._downloader is network.download


# --- the desktop: help, tooltips, labels ----------------------------------------------------------
@pytest.mark.parametrize("alg_id", [INPAINT, SR])
def test_help_is_short_flowing_and_every_parameter_has_a_tooltip(mcpn_provider, alg_id):
    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    text = alg.shortHelpString()
    assert 800 < len(text) <= 2500 and "\n" not in text  # QGIS turns every newline into a line break
    for word in ("benchmark", "paper", "bf16 took", "not measured"):
        assert word not in text
    assert "CPU" in text and "GPU" in text
    assert alg.helpUrl().endswith("README.md#using-the-algorithms")
    for definition in alg.parameterDefinitions():
        assert len(definition.help()) > 20, definition.name()
        assert "\n" not in definition.help()
        assert ";" not in definition.description() and "=" not in definition.description(), definition.name()
    assert alg.parameterDefinition("LEARNING_RATE").metadata()["widget_wrapper"]["decimals"] == 6


@pytest.mark.parametrize("alg_id", [INPAINT, SR])
def test_the_help_names_every_input_and_every_method_and_stopping_rule(mcpn_provider, alg_id):
    """The help says what each input means: every input layer is named in it (in italics, by the start of its
    label), every name in italics is a parameter's, and every option of Method and Stopping is described."""
    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    text = alg.shortHelpString().lower()
    named = re.findall(r"<i>(.*?)</i>", text)
    labels = {d.name(): d.description().lower() for d in alg.parameterDefinitions()}
    for name in named:
        assert any(label.startswith(name) for label in labels.values()), f"the help names {name!r}, no parameter"
    for definition in alg.parameterDefinitions():
        if definition.type() in ("raster", "multilayer", "source"):
            label = labels[definition.name()]
            assert any(label.startswith(name) for name in named), f"{definition.name()} ({label}) not in the help"
    for choice in ("METHOD", "STOPPING"):
        for option in alg.parameterDefinition(choice).options():
            assert option.lower().replace(" (default)", "") in text, f"{choice} option {option!r} not in the help"


def test_pairs_are_labelled(mcpn_provider):
    alg = QgsApplication.processingRegistry().algorithmById(INPAINT)
    assert "(or cloud polygons)" in alg.parameterDefinition("MASK").description()
    assert "(or cloud mask raster)" in alg.parameterDefinition("MASK_POLYGONS").description()
    assert "(or radar guide rasters)" in alg.parameterDefinition("GUIDES").description()
    assert "(or guide rasters)" in alg.parameterDefinition("RADAR_GUIDES").description()


def test_mask_values_checked_before_the_run(mcpn_provider, s2_scene):
    alg = QgsApplication.processingRegistry().algorithmById(INPAINT)
    params = {
        "INPUT": str(s2_scene["target"]),
        "MASK": str(s2_scene["mask"]),
        "MASK_VALUES": "clouds",
        "GUIDES": [str(s2_scene["guide"])],
        "OUTPUT": str(s2_scene["tmp"] / "never.tif"),
    }
    ok, message = alg.checkParameterValues(params, QgsProcessingContext())
    assert not ok and "Cannot read the cloud mask value 'clouds'" in message
    ok, message = alg.checkParameterValues({**params, "MASK_VALUES": "3, 8-10, >=40"}, QgsProcessingContext())
    assert ok, message
    ok, message = alg.checkParameterValues({**params, "GUIDES": None}, QgsProcessingContext())
    assert not ok and "at least one guide" in message
    ok, message = alg.checkParameterValues({**params, "MASK": None}, QgsProcessingContext())
    assert not ok and "cloud mask raster, cloud polygons or both" in message


# --- progress -------------------------------------------------------------------------------------
class Recorder(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.lines, self.values = [], []

    def pushInfo(self, info):  # noqa: N802 (QGIS API)
        self.lines.append(info)

    def setProgress(self, progress):  # noqa: N802 (QGIS API)
        self.values.append(progress)


def test_progress_moves_from_the_first_step_and_logs_every_five_percent():
    feedback, now = Recorder(), [100.0]
    reporter = ProgressReporter(feedback, clock=lambda: now[0])
    now[0] += 12  # start-up: not a step, so not in the estimate of the time left
    for step in range(1, 4001):
        now[0] += 0.5
        reporter(step, 4000)
    assert feedback.values[0] >= 1 and feedback.values == sorted(feedback.values) and feedback.values[-1] == 99
    assert len(feedback.lines) == 21  # the first step, then 5 %, 10 % ... 100 %
    assert feedback.lines[0] == "Step 1 of 4000 (0 %), 12 s elapsed."
    assert feedback.lines[1] == "Step 200 of 4000 (5 %), 1 min 52 s elapsed, about 31 min 40 s left."
    assert feedback.lines[-1] == "Step 4000 of 4000 (100 %), 33 min 32 s elapsed."


def test_durations():
    assert [duration(s) for s in (0, 59.4, 61, 3600, 7384)] == ["0 s", "59 s", "1 min 01 s", "1 h 00 min", "2 h 03 min"]
