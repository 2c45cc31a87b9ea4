"""scripts/claims.py (make claims): a README figure that its results file does not hold fails the check.

Each test builds a small repository of its own (README, claims.json, a results file), never the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import claims  # scripts/claims.py, on sys.path through tests/conftest.py
import pytest

SENTENCE = "On the scene (4000 steps, 3 seeds) MCPN scores {mcpn} against {regression} ({gain}), in 264 s, 84 % kept."
RESULTS = """# scene

- command: python benchmarks/scene.py --steps 4000
- commit at start: abc1234
- load average at start: 0.{mcpn_digits} 1.00 1.00
- date: 2026-01-01 10:00

| method | SSIM | seconds | kept |
|---|---|---|---|
| MCPN | {mcpn} | 264.0 | 0.8412 |
| guide regression | {regression} | 0.5 | – |
"""


def make_repo(tmp: Path, readme: dict, results: dict, derived: dict | None = None) -> tuple[Path, Path]:
    """A repository with one claim: ``SENTENCE`` filled with ``readme``, its results file with ``results``."""
    text = SENTENCE.format(**readme)
    (tmp / "README.md").write_text(f"# A plugin\n\n{text}\n", encoding="utf-8")
    (tmp / "results").mkdir()
    (tmp / "results" / "scene.md").write_text(RESULTS.format(mcpn_digits="999", **results), encoding="utf-8")
    entry = {"text": text, "tests": [], "results": ["results/scene.md"]}
    if derived is not None:
        entry["derived"] = derived
    (tmp / "claims.json").write_text(json.dumps({"table": [], "sentences": [entry]}), encoding="utf-8")
    return tmp, tmp / "claims.json"


AGREE = {"mcpn": "0.803", "regression": "0.786", "gain": "+0.017"}


def test_figures_that_agree_with_the_results_file_pass(tmp_path, capsys):
    repo, claims_file = make_repo(
        tmp_path, AGREE, {"mcpn": "0.8031", "regression": "0.786"}, {"+0.017": "0.803 - 0.786"}
    )
    assert claims.run(repo, claims_file, numbers=True) == 0
    out = capsys.readouterr().out
    assert "ok       0.803: found" in out and "ok       +0.017: = 0.803 - 0.786" in out
    assert "84 %: found" in out  # a share is also found as its fraction (0.8412)


def test_a_readme_number_that_differs_from_its_results_file_fails(tmp_path, capsys):
    derived = {"+0.017": "0.803 - 0.786"}
    repo, claims_file = make_repo(
        tmp_path, {**AGREE, "mcpn": "0.812"}, {"mcpn": "0.803", "regression": "0.786"}, derived
    )
    assert claims.run(repo, claims_file, quiet=True) == 1
    errors = capsys.readouterr().err
    assert "0.812 not in the results files (results/scene.md)" in errors
    assert "1 problem(s)" in errors  # the rest agrees: 264 s (as 264.0), 84 % (as 0.8412), +0.017 derived


def test_a_computed_figure_without_its_derivation_fails(tmp_path, capsys):
    repo, claims_file = make_repo(tmp_path, AGREE, {"mcpn": "0.803", "regression": "0.786"})
    assert claims.run(repo, claims_file, quiet=True) == 1
    assert "+0.017 not in the results files" in capsys.readouterr().err


def test_a_derivation_of_a_figure_the_claim_no_longer_has_fails(tmp_path, capsys):
    derived = {"+0.017": "0.803 - 0.786", "+0.020": "0.803 - 0.783"}
    repo, claims_file = make_repo(tmp_path, AGREE, {"mcpn": "0.803", "regression": "0.786"}, derived)
    assert claims.run(repo, claims_file, quiet=True) == 1
    assert "+0.020 listed in claims.json but not a figure of the claim" in capsys.readouterr().err


def test_a_rerun_that_changes_a_number_fails_its_derivation_until_the_readme_is_restated(tmp_path, capsys):
    derived = {"+0.017": "0.803 - 0.786"}
    repo, claims_file = make_repo(tmp_path, AGREE, {"mcpn": "0.803", "regression": "0.791"}, derived)
    assert claims.run(repo, claims_file, quiet=True) == 1
    errors = capsys.readouterr().err
    assert "0.786 not in the results files" in errors
    assert "+0.017 derived 0.803 - 0.786: ['0.786'] not in the files" in errors


def test_a_wrong_derivation_fails(tmp_path, capsys):
    repo, claims_file = make_repo(
        tmp_path, AGREE, {"mcpn": "0.803", "regression": "0.786"}, {"+0.017": "0.803 - 0.776"}
    )
    assert claims.run(repo, claims_file, quiet=True) == 1
    assert "['0.776'] not in the files" in capsys.readouterr().err


def test_header_numbers_are_not_results(tmp_path, capsys):
    """A figure found only in the load average of the header is not backed (0.999 here)."""
    repo, claims_file = make_repo(tmp_path, {**AGREE, "mcpn": "0.999"}, {"mcpn": "0.803", "regression": "0.786"})
    assert claims.run(repo, claims_file, quiet=True) == 1
    assert "0.999 not in the results files" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, results, set_up",
    [
        (
            "256 x 256 px, 4000 steps, 3 seeds, 2011, Sentinel-2, s2_guide, x3.3, 3e-3, v0.6.0",
            [],
            ["256", "256", "4000"],
        ),
        ("0.1-0.2 s and 0.46-0.57", ["0.1", "0.2 s", "0.46", "0.57"], []),
        (
            "(+0.033 over) RMSE -0.3 % ± 16 %, 1.04x, 6x, 33 minutes",
            ["+0.033", "-0.3 %", "16 %", "1.04x", "6x", "33 minutes"],
            [],
        ),
        ("33 / 58 %", ["33 %", "58 %"], []),
    ],
)
def test_which_figures_are_results(text, results, set_up):
    """Decimal point, sign or a unit of a share, ratio or time: a result; an integer without one: the set-up."""
    found = claims.figures(text)
    assert [f.label for f in found if f.result] == results
    assert [f.label for f in found if not f.result][: len(set_up)] == set_up
    assert all(not f.signed for f in found if f.label in ("0.2 s", "0.57"))  # a range's hyphen is no minus


def test_numbers_are_compared_at_the_readmes_precision():
    assert claims.agrees(0.92, 2, False, 0.9213) and not claims.agrees(0.922, 3, False, 0.9213)
    assert claims.agrees(0.130, 3, True, 0.1304) and not claims.agrees(-0.130, 3, True, 0.1304)
    assert claims.agrees(84, 0, False, 0.8412, share=True) and not claims.agrees(84, 0, False, 0.8412)


def test_a_series_in_a_json_file_backs_no_figure(tmp_path, capsys):
    """Among a convergence curve's many numbers nearly any figure would be found: series are left out."""
    repo, claims_file = make_repo(
        tmp_path, AGREE, {"mcpn": "0.803", "regression": "0.786"}, {"+0.017": "0.803 - 0.786"}
    )
    text = SENTENCE.format(**{**AGREE, "mcpn": "0.811"})
    (repo / "README.md").write_text(f"# A plugin\n\n{text}\n", encoding="utf-8")
    curve = {str(step): 0.8 + step / 10000 for step in range(0, 260, 10)}  # holds 0.811
    data = {"run": {"date": "2026"}, "data": [{"ssim": 0.803, "curve": curve}, {"ssim": 0.811}]}
    (repo / "results" / "scene.json").write_text(json.dumps(data), encoding="utf-8")
    entry = {"text": text, "tests": [], "results": ["results/scene.md", "results/scene.json"], "derived": {}}
    (repo / "claims.json").write_text(json.dumps({"table": [], "sentences": [entry]}), encoding="utf-8")
    assert claims.run(repo, claims_file, quiet=True) == 1  # +0.017 has no derivation here
    assert "0.811 not in" not in capsys.readouterr().err  # a record's own number counts
    data["data"].pop()
    (repo / "results" / "scene.json").write_text(json.dumps(data), encoding="utf-8")
    assert claims.run(repo, claims_file, quiet=True) == 1
    assert "0.811 not in the results files" in capsys.readouterr().err  # the curve's 0.811 does not
