# SPDX-License-Identifier: GPL-2.0-or-later
"""Every testable claim of README.md with the tests or results files that back it; fails if one is missing.

The README is the user's contract. scripts/claims.json lists each claim: a row of its "When something is
wrong" table (keyed by the row's situation) or a sentence of it (as it reads there, line breaks aside), with
the test functions (found by name anywhere under tests/) and results files (under the repository) that back
it. The script fails (exit status 1) when a listed test or file does not exist, a claim has no backing, a
claim is no longer in the README (or a row of the table is not listed), a row of the table names other
test files than those holding its tests, or a result figure of a claim is not in its results files. A claim
that cannot be backed is removed from the README, or gets a test.

Figures. In a claim that names results files, a figure counts as a result when it has a decimal point, a
sign or a unit of a share, a ratio or a time (0.922, +0.130, 84 %, 1.04x, 264 s, 33 minutes); integers
without such a unit are the set-up (256 px, 4000 steps, 3 seeds, 2011). Each result figure must be a number
of one of the claim's text results files (.md, .json), compared at the figure's own precision (0.92 is
found as 0.9213; an unsigned figure also as a negative number; a % figure also as a fraction, 84 % as
0.8412). A figure computed from the file's numbers is given in the claim's "derived" ({"+0.130":
"0.922 - 0.792"}, + - * / and brackets): each number of the expression with a decimal point must be in the
files (integers are constants: "524.9 / 1000"; write 264.0 to check 264) and the expression must give the
figure at its precision. A figure the rule takes for a result but that is set-up is
listed in the claim's "set_up". JSON series (a list or mapping of more than 12 numbers: a convergence curve)
are left out, and so are the header's commit, machine, load and date. A figure is looked for anywhere in the
files, not in its row: a changed figure that equals another number of the files still passes. So a rerun
that changes a number fails here until the README says it again.

Usage: python3 scripts/claims.py [--quiet] [--numbers]   (also `make claims`, run by .ci/run)
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


DIGITS = re.compile(r"\d+(?:\.\d+)?")
FILE_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+\-]?\d+)?")
UNIT = re.compile(r"x\b|\s?(?:%|ms\b|s\b|min\b|minutes?\b|seconds?\b|h\b|hours?\b)")
SHARED_PERCENT = re.compile(r"\s?/\s?\d+(?:\.\d+)?\s?%")  # the 33 of "33 / 58 %" is a share too
SIGNS = "+-\u2212"
VERSION = re.compile(r"(?:QGIS|Python|Ubuntu|Version=|[A-Za-z]-) ?$")  # 3.22, 3.8, 20.04, 4.99, GPL-2.0
TEXT_RESULTS = (".md", ".json", ".txt", ".csv")
HEADER_NOISE = ("commit at start", "machine", "load average at start", "date")  # numbers that are no results
SERIES = 12  # more numbers than this in one JSON list or mapping: a series, not results


@dataclass(frozen=True)
class Figure:
    label: str  # as the README writes it, spaces normalised: "+0.130", "85 %", "1.04x"
    value: float  # signed
    decimals: int
    signed: bool
    unit: str

    @property
    def result(self) -> bool:
        """A result (to be found in the results files), not the set-up: a decimal point, a sign or a unit."""
        return self.decimals > 0 or self.signed or bool(self.unit)


def _sign(text: str, start: int) -> str:
    """The sign before ``text[start]``, or "" where there is none or it is a hyphen ("S-2", "0.46-0.57")."""
    if start == 0 or text[start - 1] not in SIGNS:
        return ""
    return "" if start >= 2 and (text[start - 2].isalnum() or text[start - 2] in "._") else text[start - 1]


def figures(text: str) -> list[Figure]:
    """The figures of a claim's text, in order; not the digits of a name, a version or an exponent."""
    return [figure for _, figure in placed_figures(text)]


def placed_figures(text: str) -> list[tuple[int, Figure]]:
    """The figures of ``text`` with where each starts."""
    found = []
    for match in DIGITS.finditer(text):
        start, end = match.span()
        if start and (text[start - 1].isalnum() or text[start - 1] in "._"):  # s2_guide, x3.3, 0.6.0
            continue
        unit = UNIT.match(text, end) or SHARED_PERCENT.match(text, end)
        if not unit and re.match(r"\.\d|[A-Za-z_]", text[end : end + 2]):  # 0.6.0, 3e-3
            continue
        sign, digits, unit_text = _sign(text, start), match.group(), unit.group().strip() if unit else ""
        unit_text = "%" if unit_text.endswith("%") else unit_text
        label = sign + digits + ("" if not unit_text else unit_text if unit_text == "x" else " " + unit_text)
        value = float(digits) * (-1 if sign in ("-", "\u2212") else 1)
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        found.append((start, Figure(label, value, decimals, bool(sign), unit_text)))
    return found


def _without_series(data: object) -> object:
    """JSON data without its series (a list or mapping of more than ``SERIES`` numbers: a convergence curve):
    among so many numbers nearly any figure would be found."""
    if isinstance(data, (dict, list)):
        values = list(data.values()) if isinstance(data, dict) else data
        if sum(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) > SERIES:
            return None
        if isinstance(data, dict):
            return {k: _without_series(v) for k, v in data.items()}
        return [_without_series(v) for v in data]
    return data


def _results_text(path: Path) -> str:
    """A results file's text without its series and the header lines whose numbers are no results (commit, date)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("run"), dict):
            data["run"] = {k: v for k, v in data["run"].items() if k not in HEADER_NOISE}
        return json.dumps(_without_series(data))
    return "\n".join(line for line in text.splitlines() if not line.startswith(tuple(f"- {k}:" for k in HEADER_NOISE)))


def file_numbers(paths: list[Path]) -> list[float]:
    """Every number of these text files, signed where a sign stands before it (not a hyphen)."""
    numbers = []
    for path in paths:
        if path.suffix not in TEXT_RESULTS or not path.is_file():
            continue
        text = _results_text(path)
        for match in FILE_NUMBER.finditer(text):
            start = match.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in "._"):
                continue
            numbers.append(float(match.group()) * (-1 if _sign(text, start) in ("-", "\u2212") else 1))
    return numbers


def agrees(value: float, decimals: int, signed: bool, number: float, share: bool = False) -> bool:
    """Whether ``number`` gives ``value`` at its precision (signed: with its sign; share: also as a fraction)."""
    half = 0.5 * 10.0**-decimals + 1e-9
    candidates = [number, number * 100] if share else [number]
    return any(abs((c if signed else abs(c)) - (value if signed else abs(value))) <= half for c in candidates)


def derive(expression: str) -> tuple[float, list[str]]:
    """The value of ``expression`` (numbers, + - * /, brackets) and its numbers as written."""
    expression, inputs = expression.strip(), []  # type: str, list[str]

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            inputs.append(expression[node.col_offset : node.end_col_offset])
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            left, right = value(node.left), value(node.right)
            ops = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
            return ops[type(node.op)] if type(node.op) in ops else left / right
        raise ValueError(f"not a sum, difference, product or quotient of numbers: {expression!r}")

    return value(ast.parse(expression, mode="eval").body), inputs


@dataclass(frozen=True)
class Claim:
    text: str  # a row's situation cell, or a sentence of the README
    tests: tuple[str, ...] = ()  # test function names
    results: tuple[str, ...] = ()  # results files, relative to the repository
    derived: tuple[tuple[str, str], ...] = ()  # figure label -> expression of the results files' numbers
    set_up: tuple[str, ...] = ()  # figure labels the rule takes for results that are the set-up


def check_figures(claim: Claim, repo: Path) -> list[tuple[str, str, bool]]:
    """Each result figure of a claim that names results files: (label, how it was found or not, found)."""
    if not claim.results:
        return []
    numbers = file_numbers([repo / result for result in claim.results])
    derived = dict(claim.derived)
    rows = []

    def in_files(written: str) -> bool:  # a derivation's input, at the precision it is written with
        return any(agrees(float(written), len(written.split(".")[1]), False, n) for n in numbers)

    for figure in (f for f in figures(claim.text) if f.result and f.label not in claim.set_up):
        share = figure.unit == "%"
        if figure.label in derived:
            expression = derived[figure.label]
            try:
                value, inputs = derive(expression)
            except (SyntaxError, ValueError, ZeroDivisionError) as error:
                rows.append((figure.label, f"derived {expression!r}: {error}", False))
                continue
            missing = [x for x in inputs if "." in x and not in_files(x)]
            if missing:
                rows.append((figure.label, f"derived {expression}: {missing} not in the files", False))
            elif not agrees(figure.value, figure.decimals, figure.signed, value):
                rows.append((figure.label, f"derived {expression} = {value:.{figure.decimals + 3}f}", False))
            else:
                rows.append((figure.label, f"= {expression}", True))
        elif any(agrees(figure.value, figure.decimals, figure.signed, n, share) for n in numbers):
            rows.append((figure.label, "found", True))
        else:
            rows.append((figure.label, "not in the results files", False))
    labels = {f.label for f in figures(claim.text)}
    for label in sorted((set(derived) | set(claim.set_up)) - labels):
        rows.append((label, "listed in claims.json but not a figure of the claim", False))
    return rows


def load(path: Path = CLAIMS) -> tuple[list[Claim], ...]:
    """The claims of ``path``: the table's rows, then the other sentences."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        [
            Claim(
                entry["text"],
                tuple(entry["tests"]),
                tuple(entry.get("results", ())),
                tuple(entry.get("derived", {}).items()),
                tuple(entry.get("set_up", ())),
            )
            for entry in data[part]
        ]
        for part in ("table", "sentences")
    )


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def find_tests(repo: Path = REPO) -> dict[str, list[str]]:
    """Test function name -> the test files (under tests/) defining it."""
    found: dict[str, list[str]] = {}
    for path in sorted((repo / "tests").rglob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append(str(path.relative_to(repo)))
    return found


def table_rows(readme: str) -> dict[str, list[str]]:
    """The "When something is wrong" table: situation -> the test files its last column names."""
    lines = readme.splitlines()
    start = lines.index(TABLE_HEADER) + 2 if TABLE_HEADER in lines else len(lines)
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = re.findall(r"test_\w+\.py", cells[-1])
    return rows


def check(claim: Claim, tests: dict[str, list[str]], repo: Path = REPO) -> tuple[list[str], list[str]]:
    """The claim's backing as lines to print, and its problems."""
    lines, problems = [], []
    for name in claim.tests:
        if name in tests:
            lines.append(f"    test     {name}  ({', '.join(tests[name])})")
        else:
            problems.append(f"no test function {name} under tests/")
    for result in claim.results:
        if (repo / result).is_file():
            lines.append(f"    results  {result}")
        else:
            problems.append(f"no results file {result}")
    if not claim.tests and not claim.results:
        problems.append("nothing backs it: remove it from the README or give it a test")
    return lines, problems


def uncovered(readme: str, claims: list[Claim]) -> list[tuple[str, str]]:
    """Result figures of the README outside every claim that names results files: (figure, its context)."""
    text = normalised(re.sub(r"```.*?```", " ", readme, flags=re.S))
    covered = [False] * len(text)
    for claim in (c for c in claims if c.results):
        start = text.find(normalised(claim.text))
        while start >= 0:
            covered[start : start + len(normalised(claim.text))] = [True] * len(normalised(claim.text))
            start = text.find(normalised(claim.text), start + 1)
    return [(figure.label, text[max(0, start - 50) : start + 40]) for start, figure in placed_figures(text)
            if figure.result and not covered[start] and not VERSION.search(text, 0, start)]  # fmt: skip


def run(repo: Path = REPO, claims_file: Path = CLAIMS, quiet: bool = False, numbers: bool = False) -> int:
    """Check every claim of ``claims_file`` against ``repo``'s README, tests and results; 1 on a problem."""
    readme = (repo / "README.md").read_text(encoding="utf-8")
    tests = find_tests(repo)
    rows = table_rows(readme)
    table, sentences = load(claims_file)
    errors = [f"README table row without an entry here: {situation!r}" for situation in rows
              if situation not in {c.text for c in table}]  # fmt: skip
    for section, claims in (("table", table), ("sentence", sentences)):
        for claim in claims:
            lines, problems = check(claim, tests, repo)
            if section == "table" and claim.text not in rows:
                problems.append("not a row of the README's table")
            elif section == "table":
                named, holding = set(rows[claim.text]), {Path(f).name for n in claim.tests for f in tests.get(n, [])}
                if named != holding:
                    problems.append(f"the README names {sorted(named)}, its tests are in {sorted(holding)}")
            elif normalised(claim.text) not in normalised(readme):
                problems.append("not in the README (changed? update it here)")
            checked = check_figures(claim, repo)
            lines += [f"    {'ok ' if ok else 'BAD'}      {label}: {how}" for label, how, ok in checked]
            problems += [f"{label} {how} ({', '.join(claim.results)})" for label, how, ok in checked if not ok]
            if numbers and checked:
                print(f"[{section}] {claim.text}", *(line for line in lines if line[4:7] in ("ok ", "BAD")), sep="\n")
            elif not quiet and not numbers:
                print(f"[{section}] {claim.text}", *lines, sep="\n")
            errors += [f"{claim.text!r}: {problem}" for problem in problems]
    if numbers:
        loose = uncovered(readme, table + sentences)
        print(f"\n{len(loose)} result figure(s) of README.md in no claim that names results files (not checked):")
        print(*(f"  {label:8} ...{context}..." for label, context in loose), sep="\n")
    total = len(table) + len(sentences)
    if errors:
        print(f"\n{len(errors)} problem(s) in {total} claims:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    print(f"\n{total} claims of README.md, backed by tests or results files that exist and hold their figures.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="print the problems only")
    parser.add_argument("--numbers", action="store_true", help="print each result figure and where it was found")
    args = parser.parse_args()
    return run(quiet=args.quiet, numbers=args.numbers)


if __name__ == "__main__":
    sys.exit(main())
