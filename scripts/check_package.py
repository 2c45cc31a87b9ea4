# SPDX-License-Identifier: GPL-2.0-or-later
"""Check a plugin zip the way plugins.qgis.org does before it accepts an upload.

Reproduces the repository validator's checks (QGIS-Django ``plugins/validator.py``):
size limit, no path information, no ``.pyc`` / ``__pycache__`` / ``.git`` / ``__MACOSX``,
a single top folder with a valid name holding ``__init__.py`` and ``metadata.txt``,
the required metadata fields (read with the same ``configparser`` settings), URLs
with a scheme and a host, an author without slashes, ``LICENSE`` present, and the
icon readable; plus no hidden files (``.DS_Store``...) and the upload security
scan's Bandit check as the site runs it (``plugins/security_scanner.py`` of
qgis/QGIS-Plugins-Website): ``bandit -r`` over the unzipped package with ``-t``
the tests enabled in its rule table and no severity filter, where any finding
fails (the site marks the version blocked). The validator's reachability check
of the URLs needs a network and is left out; ``--release`` also refuses
placeholder email and URLs.

Usage: python scripts/check_package.py dist/mcpn-<version>.zip [--release]
Exit status: 0 when the zip would be accepted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import codecs
import configparser
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from io import StringIO
from urllib.parse import urlparse

MAX_SIZE = 25_000_000  # PLUGIN_MAX_UPLOAD_SIZE of the repository
REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker", "repository")
FORBIDDEN_DIRS = ("__MACOSX", ".git", "__pycache__")
PLACEHOLDERS = ("example.org", "example.com", "mcpn-qgis/")
# The Bandit tests the site runs: those "enabled" in qgis/QGIS-Plugins-Website
# qgis-app/plugins/management/commands/data/bandit_rules.json (commit 73c20fa, 2026-07), i.e. every test but
# B109, B404, B410 and B411. Its administrators may change the table: compare it before a release.
SITE_BANDIT_TESTS = (
    "B101,B102,B103,B104,B105,B106,B107,B108,B110,B111,B112,B113,B201,B202,"
    "B301,B302,B303,B304,B305,B306,B307,B308,B310,B311,B312,B313,B314,B315,B316,B317,B318,B319,B320,B321,"
    "B323,B324,B401,B402,B403,B405,B406,B407,B408,B409,B412,B413,"
    "B501,B502,B503,B504,B505,B506,B507,B508,B509,B601,B602,B603,B604,B605,B606,B607,B608,B609,B610,B611,"
    "B612,B613,B614,B615,B701,B702,B703,B704"
)


def check(path: str, release: bool = False) -> list[str]:
    """The problems found in the zip at ``path`` (empty when it passes)."""
    problems: list[str] = []
    if os.path.getsize(path) > MAX_SIZE:
        problems.append(f"the zip is {os.path.getsize(path)} bytes, over the {MAX_SIZE} bytes limit")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return ["not a zip file"]
    with archive:
        names = archive.namelist()
        problems += [problem for name in names for problem in _entry_problems(name)]
        bad = archive.testzip()
        if bad:
            problems.append(f"bad zip (CRC error) on {bad}")
        tops = sorted({name.split("/")[0] for name in names})
        if len(tops) != 1 or not names or "/" not in names[0]:
            return [*problems, f"the zip must hold one top folder, not {tops}"]
        package = tops[0]
        problems += _structure_problems(package, names)
        if f"{package}/metadata.txt" not in names:
            return problems
        try:
            metadata = _metadata(archive.read(f"{package}/metadata.txt"))
        except (configparser.Error, UnicodeDecodeError) as exc:
            return [*problems, f"errors parsing metadata.txt: {exc}"]
        problems += _metadata_problems(metadata) + _icon_problems(archive, package, metadata.get("icon", ""))
        problems += _placeholders(metadata, release)
        with tempfile.TemporaryDirectory() as folder:
            archive.extractall(folder)
            problems += bandit(os.path.join(folder, package))
    return problems


def _entry_problems(name: str) -> list[str]:
    """What is wrong with one entry of the zip: path information, compiled, forbidden or hidden files."""
    parts = name.rstrip("/").split("/")
    problems = []
    if ".." in name or name.startswith("/"):
        problems.append(f"path information in the zip: {name}")
    if ".pyc" in name:
        problems.append(f"compiled Python file: {name}")
    for forbidden in FORBIDDEN_DIRS:
        if forbidden in parts[:-1] or (name.endswith("/") and forbidden in parts):
            problems.append(f"forbidden folder {forbidden}: {name}")
    if any(part.startswith(".") for part in parts):
        problems.append(f"hidden file or folder: {name}")
    return problems


def _structure_problems(package: str, names: list[str]) -> list[str]:
    problems = []
    if not re.match(r"^[A-Za-z][A-Za-z0-9-_]+$", package):
        problems.append(f"invalid top folder name {package!r}")
    for required in ("__init__.py", "metadata.txt", "LICENSE"):
        if f"{package}/{required}" not in names:
            problems.append(f"cannot find {required} in the plugin package")
    return problems


def _metadata(data: bytes) -> dict[str, str]:
    """The [general] section of metadata.txt, read as the validator reads it (interpolation on, case kept)."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_file(StringIO(codecs.decode(data, "utf8")))
    return dict(parser.items("general"))


def _metadata_problems(metadata: dict[str, str]) -> list[str]:
    problems = []
    missing = [field for field in REQUIRED if not metadata.get(field, "").strip()]
    if missing:
        problems.append(f"missing metadata: {', '.join(missing)}")
    for field in ("tracker", "repository", "homepage"):
        url = urlparse(metadata.get(field, "") or "")
        if field in metadata and not (url.scheme and url.netloc):
            problems.append(f"metadata {field} is not a valid URL")
    if "/" in metadata.get("author", ""):
        problems.append("author name cannot contain slashes")
    if metadata.get("category") not in (None, "Raster", "Vector", "Database", "Web"):
        problems.append(f"category {metadata['category']!r} is not one of Raster, Vector, Database, Web")
    return problems


def _icon_problems(archive: zipfile.ZipFile, package: str, icon: str) -> list[str]:
    icon = icon[2:] if icon.startswith("./") else icon
    try:
        data = archive.read(f"{package}/{icon}") if icon else b""
    except KeyError:
        data = b""
    if not data:
        return [f"icon {icon or '(none)'} not found in the zip"]
    if icon.endswith(".svg") and b"<svg" not in data[:2000]:
        return [f"icon {icon} is not an SVG image"]
    if icon.endswith(".png") and not data.startswith(b"\x89PNG"):
        return [f"icon {icon} is not a PNG image"]
    return []


def _placeholders(metadata: dict[str, str], release: bool) -> list[str]:
    """Placeholder email and URLs: a problem for a release, a warning otherwise."""
    fields = [
        f for f in ("email", "tracker", "repository", "homepage") if any(p in metadata.get(f, "") for p in PLACEHOLDERS)
    ]
    if not fields:
        return []
    message = f"placeholder metadata to replace before publishing: {', '.join(fields)}"
    if release:
        return [message]
    print(f"warning: {message}")
    return []


def bandit(folder: str) -> list[str]:
    """Bandit over the unzipped plugin with the site's tests and every severity: any finding fails."""
    done = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", folder, "-t", SITE_BANDIT_TESTS, "-f", "json", "-q"],
        capture_output=True,
        text=True,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [f"bandit did not run: {done.stderr.strip()[-500:]}"]
    problems = [
        f"bandit {issue['test_id']} ({issue['issue_severity'].lower()} severity) at "
        f"{os.path.relpath(issue['filename'], folder)}:{issue['line_number']}: {issue['issue_text']}"
        for issue in report.get("results", [])
    ]
    problems += [f"bandit could not scan {error['filename']}: {error['reason']}" for error in report.get("errors", [])]
    print(f"bandit: {report.get('metrics', {}).get('_totals', {}).get('loc', '?')} lines scanned")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zip")
    parser.add_argument("--release", action="store_true", help="also refuse placeholder email and URLs")
    args = parser.parse_args()
    problems = check(args.zip, args.release)
    for problem in problems:
        print(f"FAIL: {problem}")
    print(f"{args.zip}: {'refused' if problems else 'passes the plugin repository checks'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
