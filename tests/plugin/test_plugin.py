# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin in a real QgsApplication: provider, algorithms, load/unload/reload."""

from __future__ import annotations

import os
import sys

import mcpn
from mcpn.algorithms import compat, dependencies
from qgis.core import QgsApplication

NO_THREADING = compat.pick("Qgis.ProcessingAlgorithmFlag.NoThreading", "QgsProcessingAlgorithm.FlagNoThreading")

INPAINT_PARAMS = [
    "INPUT", "MASK", "MASK_VALUES", "MASK_POLYGONS", "GUIDES", "RADAR_GUIDES", "METHOD", "STOPPING", "STEPS",
    "DEVICE", "SEED", "TIME_LIMIT", "LEARNING_RATE", "CORE_CHANNELS", "ANCHOR", "PRECISION", "OUTPUT_AVERAGE",
    "MASK_DILATION",
    "TILE_SIZE", "SCOPE", "REFINE_STEPS", "DASK_SCHEDULER", "ENSEMBLE", "SELF_VALIDATION", "OUTPUT", "UNCERTAINTY",
    "REPORT",
]  # fmt: skip
SR_PARAMS = [
    "INPUT", "GUIDES", "METHOD", "STOPPING", "STEPS", "DEVICE", "SEED", "TIME_LIMIT", "LEARNING_RATE", "CORE_CHANNELS",
    "ANCHOR",
    "PRECISION", "OUTPUT_AVERAGE", "DEGRADATION", "SENSOR_BLUR", "TILE_SIZE", "SCOPE", "REFINE_STEPS", "DASK_SCHEDULER",
    "OUTPUT",
    "REPORT",
]  # fmt: skip
ADVANCED = {
    "TIME_LIMIT", "LEARNING_RATE", "CORE_CHANNELS", "ANCHOR", "PRECISION", "OUTPUT_AVERAGE", "MASK_DILATION",
    "TILE_SIZE", "SCOPE", "REFINE_STEPS", "DASK_SCHEDULER", "ENSEMBLE", "SELF_VALIDATION", "DEGRADATION", "SENSOR_BLUR",
}  # fmt: skip


def test_provider_and_algorithms(mcpn_provider):
    assert mcpn_provider is not None and mcpn_provider.isActive()
    assert mcpn_provider.name() == "MCPN" and not mcpn_provider.icon().isNull()
    registry = QgsApplication.processingRegistry()
    ids = sorted(a.id() for a in mcpn_provider.algorithms())
    assert ids == ["mcpn:guidedcloudinpainting", "mcpn:guidedsuperresolution", "mcpn:sentinel2product"]
    for alg_id, names in (("mcpn:guidedcloudinpainting", INPAINT_PARAMS), ("mcpn:guidedsuperresolution", SR_PARAMS)):
        alg = registry.algorithmById(alg_id)
        assert alg.group() == "Raster restoration" and alg.groupId() == "rasterrestoration"
        assert [p.name() for p in alg.parameterDefinitions()] == names
        assert alg.flags() & compat.FLAG_CAN_CANCEL
        assert not alg.flags() & NO_THREADING
        assert alg.helpUrl()  # the help's content: test_the_help_names_every_input_and_every_method_and_stopping_rule
        for p in alg.parameterDefinitions():
            advanced = bool(p.flags() & compat.FLAG_ADVANCED)
            assert advanced == (p.name() in ADVANCED), p.name()
        assert alg.parameterDefinition("GUIDES").layerType() == compat.SOURCE_RASTER
        assert alg.parameterDefinition("STEPS").defaultValue() == 4000


def test_enum_defaults_and_options(mcpn_provider):
    registry = QgsApplication.processingRegistry()
    inpaint = registry.algorithmById("mcpn:guidedcloudinpainting")
    sr = registry.algorithmById("mcpn:guidedsuperresolution")
    assert inpaint.parameterDefinition("METHOD").options() == ["Emergent", "Direct", "Stacked"]
    assert inpaint.parameterDefinition("METHOD").defaultValue() == 2  # Stacked
    assert sr.parameterDefinition("METHOD").defaultValue() == 2
    assert inpaint.parameterDefinition("STOPPING").options() == [
        "Fixed number of steps", "Known-region RMSE", "Patch consistency", "Held-out clear pixels (default)",
    ]  # fmt: skip
    assert inpaint.parameterDefinition("STOPPING").defaultValue() == 3
    assert sr.parameterDefinition("STOPPING").options() == [
        "Fixed number of steps", "Low-resolution RMSE", "Held-out input pixels (default)",
    ]  # fmt: skip
    assert sr.parameterDefinition("STOPPING").defaultValue() == 2
    assert sr.parameterDefinition("DEGRADATION").defaultValue() == 0
    assert [o.split()[0] for o in inpaint.parameterDefinition("DEVICE").options()] == ["auto", "CPU", "CUDA", "MPS"]
    assert inpaint.parameterDefinition("MASK_VALUES").defaultValue() == "1"
    for alg in (inpaint, sr):
        assert alg.parameterDefinition("ANCHOR").defaultValue() == 0  # from the instant estimate


def test_class_factory_load_unload_reload(no_provider, qgis_iface):
    registry = no_provider
    for iface in (None, qgis_iface):
        plugin = mcpn.classFactory(iface)
        plugin.initGui()
        assert registry.providerById("mcpn") is not None
        plugin.unload()
        assert registry.providerById("mcpn") is None
        plugin.initProcessing()
        plugin.initProcessing()  # idempotent
        assert registry.providerById("mcpn") is not None
        plugin.unload()
        plugin.unload()  # harmless twice
        assert registry.providerById("mcpn") is None


def test_qgis_utils_cycle(no_provider, qgis_iface, plugins_folder):
    """Load, start, reload and unload the plugin through qgis.utils, as the QGIS plugin manager does."""
    import qgis.utils

    registry = no_provider
    saved_modules = {k: v for k, v in sys.modules.items() if k == "mcpn" or k.startswith("mcpn.")}
    for name in saved_modules:  # a fresh import, tracked by qgis.utils like in QGIS
        del sys.modules[name]
    previous_iface, previous_paths = qgis.utils.iface, list(qgis.utils.plugin_paths)
    qgis.utils.iface = qgis_iface
    qgis.utils.plugin_paths = [str(plugins_folder)]
    try:
        qgis.utils.updateAvailablePlugins()
        assert "mcpn" in qgis.utils.available_plugins
        assert qgis.utils.loadPlugin("mcpn")
        assert qgis.utils.startPlugin("mcpn")
        assert "mcpn" in qgis.utils.active_plugins
        assert registry.providerById("mcpn") is not None
        qgis.utils.reloadPlugin("mcpn")
        assert "mcpn" in qgis.utils.active_plugins
        assert registry.providerById("mcpn") is not None
        assert qgis.utils.unloadPlugin("mcpn")
        assert registry.providerById("mcpn") is None
        assert "mcpn" not in qgis.utils.active_plugins
        assert qgis.utils.loadPlugin("mcpn")
        assert qgis.utils.startProcessingPlugin("mcpn")  # what qgis_process does (no GUI)
        assert registry.providerById("mcpn").algorithm("guidedcloudinpainting") is not None
        assert qgis.utils.unloadPlugin("mcpn")
        assert registry.providerById("mcpn") is None
    finally:
        qgis.utils.iface, qgis.utils.plugin_paths = previous_iface, previous_paths
        # qgis.utils dropped the plugin's modules: restore the ones the other tests imported
        for name in [k for k in sys.modules if k == "mcpn" or k.startswith("mcpn.")]:
            del sys.modules[name]
        sys.modules.update(saved_modules)


def test_dependency_check_and_messages():
    assert dependencies.missing_packages() == []
    for platform, needle in (("win32", "OSGeo4W"), ("darwin", "QGIS.app"), ("linux", "python3 -m pip")):
        text = dependencies.install_message(["torch", "scikit-image"], platform)
        assert needle in text and "torch scikit-image" in text and "download.pytorch.org" in text
    assert "All required" in dependencies.install_message([])


def test_metadata():
    import configparser
    from pathlib import Path

    meta = configparser.ConfigParser()
    meta.read(Path(mcpn.__file__).with_name("metadata.txt"))
    general = meta["general"]
    assert general["name"] == "MCPN" and general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes" and "Copernicus" in general["about"]
    assert (Path(mcpn.__file__).parent / general["icon"]).is_file()


def test_every_plugin_module_imports_in_qgis():
    """The plugin's own modules (they need QGIS; tests/engine/test_imports.py checks the others) are found on disk,
    so a module the provider does not load yet is checked too."""
    import importlib
    from pathlib import Path

    root = Path(mcpn.__file__).parent
    names = ["mcpn"] + [
        f"mcpn.{path.parent.name}" + ("" if path.stem == "__init__" else f".{path.stem}")
        for folder in ("algorithms", "mcpn_plugin")
        for path in sorted((root / folder).glob("*.py"))
    ]
    assert {"mcpn.algorithms.inpainting", "mcpn.algorithms.network"} <= set(names)
    for name in names:
        importlib.import_module(name)


def test_provider_loads_without_torch(plugins_folder):
    """The provider and algorithms import without torch (the engine is imported lazily)."""
    import subprocess

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from qgis.core import QgsApplication\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        "import mcpn\n"
        "plugin = mcpn.classFactory(None); plugin.initProcessing()\n"
        "provider = QgsApplication.processingRegistry().providerById('mcpn')\n"
        "assert len(provider.algorithms()) == 3\n"
        "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "from mcpn.algorithms import dependencies\n"
        "print('MISSING', dependencies.missing_packages())\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join([str(plugins_folder), *sys.path]))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MISSING ['torch']" in done.stdout
