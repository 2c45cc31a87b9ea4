"""Every module of the engine, the benchmarks and the scripts imports in plain Python, without QGIS.

The modules are found on disk, so a new module is checked without being listed here; the plugin's own modules
(which need QGIS) are checked by tests/plugin/test_plugin.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IN_QGIS_DESKTOP = {"screenshots"}  # run by the QGIS desktop itself (qgis --code) on load; `make screenshots` runs it

IMPORT_ALL = """
import importlib, json, sys
sys.path[:0] = sys.argv[1:3]
failed, qgis = {}, {}
for part, names in json.loads(sys.stdin.read()).items():
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as exc:  # SystemExit too: a script that runs on import
            failed[name] = f"{type(exc).__name__}: {exc}"
    qgis[part] = sorted(m for m in sys.modules if m.split(".")[0] == "qgis")
print(json.dumps({"failed": failed, "qgis": qgis}))
"""


def modules(folder: str, package: str | None) -> list[str]:
    """The modules of a folder of the repository: dotted names under ``package``, or the scripts' file names."""
    names = []
    for path in sorted((REPO / folder).rglob("*.py")):
        if package is None:
            names.append(path.stem)
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        names.append(".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


def test_every_engine_benchmark_and_script_module_imports_without_qgis(plain_python_env):
    engine = modules("core", "mcpn")
    others = modules("benchmarks", None) + [name for name in modules("scripts", None) if name not in IN_QGIS_DESKTOP]
    assert {"mcpn.core", "mcpn.core.pipeline.inpainting", "mcpn.core.trust.report"} <= set(engine)
    assert {"quality", "_harness", "check_package"} <= set(others)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(REPO / "benchmarks"), str(REPO / "scripts")],
        input=json.dumps({"engine": engine, "benchmarks and scripts": others}),  # the engine first, alone
        capture_output=True, text=True, env=plain_python_env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"failed": {}, "qgis": {"engine": [], "benchmarks and scripts": []}}, result
