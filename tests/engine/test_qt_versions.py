# SPDX-License-Identifier: GPL-2.0-or-later
"""QGIS 3.22 (PyQt5) to QGIS 4 (PyQt6), read from the source of every file the plugin zip ships, without QGIS.

Qt comes only through ``qgis.PyQt`` (QGIS maps it to PyQt5 or PyQt6), and an enum value of a Qt or QGIS class
(``Qgis.Info``, ``QgsProcessing.TypeRaster``, ``Qt.AlignLeft``: a capitalised attribute of such a class) is
spelled only in ``algorithms/compat.py``, which picks the spelling this QGIS has. Also refused: the Qt 5 names
that QGIS's ``pyqt5_to_pyqt6.py`` migration script rewrites or warns about (``exec_``, ``qApp``, ``QRegExp``,
``QDesktopWidget``, compiled ``resources_rc``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import package  # scripts/package.py: the files the zip ships

REPO = Path(__file__).resolve().parents[2]
COMPAT = "algorithms/compat.py"
DIRECT_QT = {"PyQt5", "PyQt6", "PyQt", "sip", "PySide2", "PySide6"}
QT_CLASS = re.compile(r"^(Qt|Qgis|Qgs[A-Z]\w*|Q[A-Z]\w*)$")
QT5_ONLY = {"exec_", "qApp", "QRegExp", "QDesktopWidget", "resources_rc"}


def problems(source: str, path: str) -> list[str]:
    """What in ``source`` (the file at ``path``) would tie the plugin to one Qt or QGIS major version."""
    tree = ast.parse(source, filename=path)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
            found += [(line, f"Qt 5 only {alias.name}") for alias in node.names if alias.name in QT5_ONLY]
        else:
            modules = []
        found += [
            (line, f"imports {m} directly, not through qgis.PyQt") for m in modules if m.split(".")[0] in DIRECT_QT
        ]
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
        if name in QT5_ONLY:
            found.append((line, f"Qt 5 only {name}"))
        if (
            path != COMPAT
            and isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and QT_CLASS.match(node.value.id)
            and node.attr[:1].isupper()
            and id(node) not in called
        ):
            found.append((line, f"enum {node.value.id}.{node.attr} spelled outside {COMPAT}"))
    return [f"{path}:{line}: {problem}" for line, problem in sorted(found, key=lambda item: item[0])]


def test_shipped_code_is_the_same_for_qt5_and_qt6():
    shipped = [path for path in package.plugin_files() if path.endswith(".py")]
    assert COMPAT in shipped and "algorithms/network.py" in shipped
    found = [p for path in shipped for p in problems((REPO / path).read_text(encoding="utf-8"), path)]
    assert found == []


def test_the_check_sees_each_version_tie():
    source = (
        "import sip\n"
        "from PyQt5.QtCore import QUrl\n"
        "from qgis.PyQt.QtCore import QRegExp, Qt\n"
        "from qgis.core import Qgis, QgsProcessing\n"
        "LEVEL = Qgis.Info\n"
        "KIND = QgsProcessing.SourceType.TypeRaster\n"
        "ALIGN = Qt.AlignLeft\n"
        "dialog.exec_()\n"
        "ok = QgsProcessing.tr('x'), Qgis.version(), QUrl.fromLocalFile('a'), Qt.ItemFlags(0)\n"
    )
    found = problems(source, "algorithms/example.py")
    assert [p.split(": ", 1)[1] for p in found] == [
        "imports sip directly, not through qgis.PyQt",
        "imports PyQt5.QtCore directly, not through qgis.PyQt",
        "Qt 5 only QRegExp",
        "enum Qgis.Info spelled outside algorithms/compat.py",
        "enum QgsProcessing.SourceType spelled outside algorithms/compat.py",
        "enum Qt.AlignLeft spelled outside algorithms/compat.py",
        "Qt 5 only exec_",
    ], found
    assert [p for p in problems(source, COMPAT) if "enum" in p] == []  # compat.py is where the spellings live
