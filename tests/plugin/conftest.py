"""Plugin tests: the plugin in a real offscreen QGIS (pytest-qgis), processing.run, qgis_process, the plugin zip."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

QGIS_PROCESS = os.environ.get("MCPN_QGIS_PROCESS", "qgis_process.bin")
PROFILE = Path(__file__).resolve().parents[2] / ".build" / "profile"

_PLUGINS: list = []  # keep the plugin objects alive


@pytest.fixture(autouse=True)
def collect_garbage():
    """Free refused runs now: a caught exception's traceback keeps its Processing context (and the layers it
    loaded) in a reference cycle; freed by the garbage collector only after QGIS has exited, it segfaults."""
    yield
    gc.collect()


@pytest.fixture
def mcpn_provider(qgis_app, qgis_processing):
    """The MCPN provider in the real QgsApplication's Processing registry (registered via classFactory)."""
    import mcpn
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("mcpn")
    if provider is None:
        plugin = mcpn.classFactory(None)
        plugin.initProcessing()
        _PLUGINS.append(plugin)
        provider = plugin.provider
    return provider


@pytest.fixture
def no_provider(qgis_app):
    """The ``mcpn`` provider taken out of the registry (tests that drive the plugin life cycle)."""
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("mcpn")
    if provider is not None:
        for plugin in list(_PLUGINS):
            if plugin.provider is provider:
                plugin.provider = None
                _PLUGINS.remove(plugin)
        registry.removeProvider(provider)
    return registry


def qgis_process_env(plugins_folder: Path) -> dict:
    """The environment `make` gives qgis_process: offscreen, the .build profile, venv packages importable."""
    env = dict(os.environ)
    site = sysconfig.get_paths()["purelib"]
    paths = [str(plugins_folder), site] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_CUSTOM_CONFIG_PATH=str(PROFILE),
        PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
        XDG_RUNTIME_DIR=env.get("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}"),
    )
    return env


@pytest.fixture(scope="module")
def qgis_process(plugins_folder):
    """``qgis_process(*arguments, timeout=600)``: runs QGIS's command line (the plugin enabled in the .build
    profile) and returns the completed process."""
    if shutil.which(QGIS_PROCESS) is None:
        pytest.fail(f"{QGIS_PROCESS} not found: install QGIS (make venv)")
    env = qgis_process_env(plugins_folder)

    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)

    done = run("plugins", "enable", "mcpn", timeout=120)
    assert done.returncode == 0 or "already enabled" in done.stdout + done.stderr, done.stderr
    return run
