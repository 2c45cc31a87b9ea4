"""Plugin tests: the plugin in a real offscreen QGIS (pytest-qgis), processing.run, qgis_process, the plugin zip."""

from __future__ import annotations

import gc
import shutil
import subprocess

import pytest
from qgis_env import QGIS_PROCESS, qgis_environment  # scripts/, put on sys.path by tests/conftest.py

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


@pytest.fixture(scope="module")
def qgis_process():
    """``qgis_process(*arguments, timeout=600, cwd=None)``: runs QGIS's command line (the plugin enabled in the
    .build profile), in the folder ``cwd`` if given, and returns the completed process."""
    if shutil.which(QGIS_PROCESS) is None:
        pytest.fail(f"{QGIS_PROCESS} not found: install QGIS (make venv)")
    env = qgis_environment()

    def run(*args: str, timeout: int = 600, cwd=None) -> subprocess.CompletedProcess:
        command = [QGIS_PROCESS, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)

    done = run("plugins", "enable", "mcpn", timeout=120)
    assert done.returncode == 0 or "already enabled" in done.stdout + done.stderr, done.stderr
    return run


FAST = {"STEPS": 2, "DEVICE": 1, "SEED": 0}  # Processing parameters of a two-step run on the CPU


@pytest.fixture(scope="session")
def inpaint_params():
    """``inpaint_params(scene, **changes)``: the parameters of a fast inpainting run on ``s2_scene``."""

    def make(scene: dict, **changes) -> dict:
        return {
            "INPUT": str(scene["target"]),
            "MASK": str(scene["mask"]),
            "GUIDES": [str(scene["guide"])],
            "OUTPUT": str(scene["tmp"] / "out.tif"),
            **FAST,
            **changes,
        }

    return make


@pytest.fixture(scope="session")
def sr_params():
    """``sr_params(scene, **changes)``: the parameters of a fast super-resolution run on ``sr_scene``."""

    def make(scene: dict, **changes) -> dict:
        return {
            "INPUT": str(scene["low"]),
            "GUIDES": [str(g) for g in scene["guides"]],
            "OUTPUT": str(scene["tmp"] / "out.tif"),
            **FAST,
            **changes,
        }

    return make
