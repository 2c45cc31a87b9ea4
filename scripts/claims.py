# SPDX-License-Identifier: GPL-2.0-or-later
"""Every testable claim of README.md with the tests or results files that back it; fails if one is missing.

The README is the user's contract. scripts/claims.json lists each claim: a row of its "When something is
wrong" table (keyed by the row's situation) or a sentence of it (as it reads there, line breaks aside), with
the test functions (found by name anywhere under tests/) and results files (under the repository) that back
it. The script fails (exit status 1) when a listed test or file does not exist, a claim has no backing, a
claim is no longer in the README (or a row of the table is not listed), or a row of the table names other
test files than those holding its tests. A claim that cannot be backed is removed from the README, or gets a
test.

Usage: python3 scripts/claims.py [--quiet]   (also `make claims`, run by .ci/run)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLAIMS = Path(__file__).with_name("claims.json")
TABLE_HEADER = "| situation | what happens | test |"


@dataclass(frozen=True)
class Claim:
    text: str  # a row's situation cell, or a sentence of the README
    tests: tuple[str, ...] = ()  # test function names
    results: tuple[str, ...] = ()  # results files, relative to the repository


def load() -> tuple[list[Claim], ...]:
    """The claims of ``CLAIMS``: the table's rows, then the other sentences."""
    data = json.loads(CLAIMS.read_text(encoding="utf-8"))
    return tuple(
        [Claim(entry["text"], tuple(entry["tests"]), tuple(entry.get("results", ()))) for entry in data[part]]
        for part in ("table", "sentences")
    )


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def find_tests() -> dict[str, list[str]]:
    """Test function name -> the test files (under tests/) defining it."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    return found


def table_rows(readme: str) -> dict[str, list[str]]:
    """The "When something is wrong" table: situation -> the test files its last column names."""
    lines = readme.splitlines()
    start = lines.index(TABLE_HEADER) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = re.findall(r"test_\w+\.py", cells[-1])
    return rows


def check(claim: Claim, tests: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The claim's backing as lines to print, and its problems."""
    lines, problems = [], []
    for name in claim.tests:
        if name in tests:
            lines.append(f"    test     {name}  ({', '.join(tests[name])})")
        else:
            problems.append(f"no test function {name} under tests/")
    for result in claim.results:
        if (REPO / result).is_file():
            lines.append(f"    results  {result}")
        else:
            problems.append(f"no results file {result}")
    if not claim.tests and not claim.results:
        problems.append("nothing backs it: remove it from the README or give it a test")
    return lines, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="print the problems only")
    args = parser.parse_args()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tests = find_tests()
    rows = table_rows(readme)
    table, sentences = load()
    errors = [f"README table row without an entry here: {situation!r}" for situation in rows
              if situation not in {c.text for c in table}]  # fmt: skip
    for section, claims in (("table", table), ("sentence", sentences)):
        for claim in claims:
            lines, problems = check(claim, tests)
            if section == "table" and claim.text not in rows:
                problems.append("not a row of the README's table")
            elif section == "table":
                named, holding = set(rows[claim.text]), {Path(f).name for n in claim.tests for f in tests.get(n, [])}
                if named != holding:
                    problems.append(f"the README names {sorted(named)}, its tests are in {sorted(holding)}")
            elif normalised(claim.text) not in normalised(readme):
                problems.append("not in the README (changed? update it here)")
            if not args.quiet:
                print(f"[{section}] {claim.text}", *lines, sep="\n")
            errors += [f"{claim.text!r}: {problem}" for problem in problems]
    total = len(table) + len(sentences)
    if errors:
        print(f"\n{len(errors)} problem(s) in {total} claims:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    print(f"\n{total} claims of README.md, each backed by tests or results files that exist.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
