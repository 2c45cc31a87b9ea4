"""benchmarks/_harness.py: results come from a commit; a run with uncommitted changes writes elsewhere, if asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _harness  # noqa: E402  (a module of this repository: an import error must fail)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git repository shaped like this one: core/, the benchmarks' shared modules, two scripts, docs."""
    for name in ("core/engine.py", "benchmarks/_harness.py", "benchmarks/cases.py", "benchmarks/quality.py",
                 "benchmarks/speed.py", "docs/notes.md"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def test_a_change_to_the_script_its_shared_modules_or_core_makes_the_run_dirty(repo):
    script = repo / "benchmarks" / "quality.py"
    commit = git(repo, "rev-parse", "--short", "HEAD")
    assert _harness._state(script, repo) == (commit, False)
    for name in ("docs/notes.md", "benchmarks/speed.py"):  # neither the script nor what it shares
        (repo / name).write_text("x = 2\n")
    assert _harness._state(script, repo) == (commit, False)
    for name in ("benchmarks/quality.py", "benchmarks/cases.py", "benchmarks/_harness.py", "core/engine.py"):
        (repo / name).write_text("x = 2\n")
        assert _harness._state(script, repo) == (commit, True), name
        git(repo, "checkout", "-q", "--", name)
    (repo / "core" / "new.py").write_text("y = 1\n")  # untracked counts too
    assert _harness._state(script, repo) == (commit, True)


def test_outside_a_git_repository_the_state_is_unknown_and_dirty(tmp_path):
    assert _harness._state(tmp_path / "quality.py", tmp_path) == ("unknown", True)


def test_uncommitted_changes_never_write_into_the_results_and_elsewhere_only_when_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv(_harness.ALLOW_DIRTY, raising=False)
    results, trial = _harness.RESULTS / "quality", tmp_path / "trial"
    assert _harness.refusal(results, dirty=False) is None
    assert _harness.refusal(trial, dirty=False) is None
    assert "MCPN_ALLOW_DIRTY=1" in _harness.refusal(trial, dirty=True)
    assert "commit first" in _harness.refusal(results, dirty=True)
    monkeypatch.setenv(_harness.ALLOW_DIRTY, "1")
    assert _harness.refusal(trial, dirty=True) is None
    assert "benchmarks/results/ takes a commit's results only" in _harness.refusal(results, dirty=True)
    assert _harness.refusal(_harness.RESULTS, dirty=True) is not None


def test_a_dirty_run_refuses_before_it_starts_and_an_allowed_trial_run_says_so_in_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(_harness, "_state", lambda script: ("abc1234", True))
    monkeypatch.delenv(_harness.ALLOW_DIRTY, raising=False)
    with pytest.raises(SystemExit, match="Refusing to run: .*MCPN_ALLOW_DIRTY=1"):
        _harness.Run(SimpleNamespace(out=tmp_path))
    monkeypatch.setenv(_harness.ALLOW_DIRTY, "1")
    with pytest.raises(SystemExit, match="Refusing to run: .*benchmarks/results/"):
        _harness.Run(SimpleNamespace(out=_harness.RESULTS))
    run = _harness.Run(SimpleNamespace(out=tmp_path))
    with pytest.raises(SystemExit, match="Refusing to write"):  # a script that writes elsewhere than --out
        run.write(_harness.RESULTS / "quality", "trial", "report", {})
    run.write(tmp_path, "trial", "report", {"a": 1})
    assert "- commit at start: abc1234 (uncommitted changes)" in (tmp_path / "trial.md").read_text()
    assert json.loads((tmp_path / "trial.json").read_text())["run"]["commit at start"].endswith("(uncommitted changes)")
    assert not (_harness.RESULTS / "quality" / "trial.md").exists()


def test_a_clean_run_writes_its_commit_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(_harness, "_state", lambda script: ("abc1234", False))
    run = _harness.Run(SimpleNamespace(out=tmp_path))
    run.write(tmp_path, "clean", "report", {})
    assert "- commit at start: abc1234\n" in (tmp_path / "clean.md").read_text()
