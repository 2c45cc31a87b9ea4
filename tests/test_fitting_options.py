"""Speed options of the fitting loop (memory format, torch.compile, precision, learning-rate schedule).

Each option must run and give nearly the result of the default settings: tiny
synthetic problems (32 px, a few steps) keep these fast.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from mcpn.core.errors import InputError
from mcpn.core.fitting import Fit, Problem, Settings, fit

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def problem() -> Problem:
    """A smooth 4-band target with a square gap and a 3-band guide correlated with it."""
    ys, xs = torch.meshgrid(torch.linspace(0, 3, 32), torch.linspace(0, 3, 32), indexing="ij")
    base = torch.stack([torch.sin(xs + k) * torch.cos(ys - k) for k in range(4)])[None]
    known = torch.ones_like(base)
    known[..., 10:20, 8:22] = 0
    guide = base[:, :3] * 0.8 + 0.1
    return Problem(base * known, known, [guide], [torch.ones_like(guide)], (32, 32))


def _fit(problem: Problem, steps: int = 1, **options) -> Fit:
    return fit(problem, Settings(steps=steps, **options), CPU)


# With one step the output is that of the initial parameters, the same for every option. Later steps
# cannot be compared pixel by pixel: Adam's first updates are sign-like, so rounding differences in
# near-zero gradients flip whole updates and two runs part ways. Options are compared on the fit instead.


@pytest.mark.parametrize("method", ["stacked", "emergent", "direct"])
def test_channels_last_computes_the_same_network(problem, method):
    contiguous = _fit(problem, method=method).output
    channels_last = _fit(problem, method=method, memory_format="channels_last").output
    assert channels_last.shape == contiguous.shape == (4, 32, 32)
    assert np.allclose(channels_last, contiguous, atol=1e-3)


@pytest.fixture(scope="module")
def default_rmse(problem) -> float:
    """Known-region RMSE of the default settings after 60 steps (Stacked)."""
    return _fit(problem, 60, method="stacked").trace[-1].known_rmse


@pytest.mark.parametrize(
    "options",
    [
        {"memory_format": "channels_last"},
        {"precision": "bf16"},
        {"memory_format": "channels_last", "precision": "bf16"},
    ],
    ids=str,
)
def test_options_fit_as_well_as_the_default(problem, default_rmse, options):
    rmse = _fit(problem, 60, method="stacked", **options).trace[-1].known_rmse
    assert default_rmse < 0.15  # the fit did learn the known pixels
    assert rmse < 1.6 * default_rmse  # seeds alone change it by about 30 % at this stage


def test_compiled_networks_match_eager(problem, monkeypatch):
    # The graph capture and autograd of torch.compile, without Inductor's C++ code generation
    # (minutes on a small CPU): the fitting loop's compiled path is what is checked here.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    eager = _fit(problem, method="emergent").output
    compiled = _fit(problem, method="emergent", compile=True)
    assert not any("torch.compile" in note for note in compiled.notes)
    assert np.allclose(compiled.output, eager, atol=1e-3)


def test_failed_compilation_falls_back_to_eager(problem, monkeypatch):
    def broken(model):
        def forward(inputs):
            raise RuntimeError("no C++ compiler\nmore detail")

        return forward

    monkeypatch.setattr(torch, "compile", broken)
    eager = _fit(problem, 3, method="stacked")
    fallback = _fit(problem, 3, method="stacked", compile=True)
    assert any("torch.compile failed (RuntimeError: no C++ compiler)" in note for note in fallback.notes)
    assert np.array_equal(fallback.output, eager.output)


def test_cosine_schedule_starts_at_the_base_rate_and_fits(problem):
    # The output of step 2 comes from the parameters after the first update, made at the base rate.
    assert np.array_equal(
        _fit(problem, 2, method="stacked", lr_schedule="cosine").output, _fit(problem, 2, method="stacked").output
    )
    trace = _fit(problem, 60, method="stacked", lr_schedule="cosine", check_every=10).trace
    assert trace[-1].known_rmse < 0.5 * trace[0].known_rmse


@pytest.mark.parametrize(
    "option", [{"memory_format": "nhwc"}, {"lr_schedule": "linear"}, {"precision": "fp8"}], ids=str
)
def test_unknown_option_values_are_refused(option):
    with pytest.raises(InputError, match="unknown"):
        Settings(**option).validate()
