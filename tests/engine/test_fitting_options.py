"""Options of the fitting loop (memory format, precision, optimiser, up-sampling kernel, output averaging).

Each option must run and give nearly the result of the default settings: tiny
synthetic problems (32 px, a few steps) keep these fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.config import Settings
from mcpn.core.errors import InputError
from mcpn.core.model import networks
from mcpn.core.model.fitting import Fit, OutputAverage, Problem, build_model, fit
from mcpn.core.model.networks import MCPN

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
    options = {"stopping": "fixed", **options}
    return fit([problem], Settings(steps=steps, **options), CPU)[0]


# With one step the output is that of the initial parameters, the same for every option. Later steps
# cannot be compared pixel by pixel: Adam's first updates are sign-like, so rounding differences in
# near-zero gradients flip whole updates and two runs part ways. Options are compared on the fit instead.


@pytest.mark.parametrize("method", ["stacked", "emergent", "direct"])
def test_channels_last_computes_the_same_network(problem, method):
    contiguous = _fit(problem, method=method, memory_format="contiguous").output
    channels_last = _fit(problem, method=method, memory_format="channels_last").output
    assert channels_last.shape == contiguous.shape == (4, 32, 32)
    assert np.allclose(channels_last, contiguous, atol=1e-3)


def test_dense_up_sampling_gradients_change_the_layout_not_the_values(monkeypatch):
    """The hook that makes channels-last up-sampling gradients dense (for speed) leaves the gradients as they were."""
    torch.manual_seed(0)
    model = MCPN(2, 3, [2], "stacked", up_kernel=5).to(memory_format=torch.channels_last)
    z = torch.rand(1, 2, 72, 72).contiguous(memory_format=torch.channels_last)

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        model.core(z).square().mean().backward()
        return [p.grad.clone() for p in model.parameters()]

    hooked = gradients()
    monkeypatch.setattr(networks, "_channels_last", lambda gradient: gradient)
    for a, b in zip(gradients(), hooked):
        torch.testing.assert_close(b, a, atol=1e-7, rtol=1e-5)


SEEDS = range(6)  # one fit's known RMSE after 60 steps varies by about 25 % with its seed: options compare means


def _mean_rmse(problem: Problem, **options) -> float:
    """Known-region RMSE after 60 steps (Stacked), the mean over :data:`SEEDS`."""
    return float(np.mean([_fit(problem, 60, method="stacked", seed=s, **options).trace[-1].known_rmse for s in SEEDS]))


@pytest.fixture(scope="module")
def default_rmse(problem) -> float:
    """Known-region RMSE of the default settings after 60 steps, the mean over :data:`SEEDS`."""
    return _mean_rmse(problem)


@pytest.mark.parametrize(
    "options",
    [
        {"memory_format": "contiguous"},
        {"precision": "bf16"},
        {"memory_format": "contiguous", "precision": "bf16"},
    ],
    ids=str,
)
def test_options_fit_as_well_as_the_default(problem, default_rmse, options):
    """Measured over 12 seeds, in two sets of 6, each option's mean RMSE was 0.86-1.12 times the default's: 1.3 is
    above that noise, and below what an option that fits a third worse gives."""
    rmse = _mean_rmse(problem, **options)
    assert default_rmse < 0.15  # the fit did learn the known pixels
    assert rmse < 1.3 * default_rmse


@pytest.mark.parametrize(
    "option", [{"memory_format": "nhwc"}, {"anchor": "best"}, {"precision": "fp8"}, {"degradation": "cubic"}], ids=str
)
def test_unknown_option_values_are_refused(option):
    with pytest.raises(InputError, match="unknown"):
        Settings(**option)


@pytest.mark.parametrize("up_kernel", [0, 4, 7])
def test_up_kernels_other_than_1_3_or_5_are_refused(up_kernel):
    """Even kernels do not centre; 7 and more pad wider than the network's deepest level (a raw torch error)."""
    with pytest.raises(InputError, match="1, 3 or 5"):
        Settings(up_kernel=up_kernel)


@pytest.mark.parametrize("method", ["emergent", "direct"])
def test_head_channels_set_the_width_of_every_domain_and_cycle_head(problem, method):
    model = build_model(problem, Settings(method=method, head_channels=8, input_kind="meshgrid"))
    heads = [*model.heads, *model.cycle_heads]
    widths = {m.out_channels for head in heads for m in head.body.modules() if isinstance(m, torch.nn.Conv2d)}
    assert widths == {8}
    paper = build_model(problem, Settings(method=method, input_kind="meshgrid"))
    assert {m.out_channels for m in paper.heads[0].body.modules() if isinstance(m, torch.nn.Conv2d)} == {32}
    fitted = _fit(problem, 60, method=method, head_channels=8, check_every=10)
    assert fitted.trace[-1].known_rmse < 0.5 * fitted.trace[0].known_rmse


def test_heads_without_channels_are_refused():
    with pytest.raises(InputError, match="at least one channel"):
        Settings(head_channels=0)


@pytest.mark.parametrize("up_kernel", [3, 5])
def test_up_kernel_sets_the_core_networks_up_convolutions(problem, up_kernel):
    model = build_model(problem, Settings(method="stacked", up_kernel=up_kernel, input_kind="meshgrid"))
    up_kernels = {
        m.kernel_size for name, m in model.named_modules() if ".up." in name and m.__class__.__name__ == "Conv2d"
    }
    assert up_kernels == {(up_kernel, up_kernel), (1, 1)}
    assert model.core.in_channels == 2
    fitted = _fit(problem, 60, method="stacked", up_kernel=up_kernel, check_every=10)
    assert fitted.trace[-1].known_rmse < 0.5 * fitted.trace[0].known_rmse


def _moving_average(outputs: list, decay: float) -> list:
    """The averages ``OutputAverage`` should give: the window grows with the steps up to 1 / (1 - decay)."""
    averages = [outputs[0]]
    for step, output in enumerate(outputs[1:], start=2):
        weight = min(decay, max(0.0, 1 - 10 / step))
        averages.append(weight * averages[-1] + (1 - weight) * output)
    return averages


def test_output_average_is_a_moving_average_that_leaves_its_inputs_alone():
    outputs = [torch.full((2,), float(k)) for k in range(300)]
    average = OutputAverage(0.99)
    got = [average.update(o).clone() for o in outputs]
    for a, b in zip(got, _moving_average(outputs, 0.99)):
        torch.testing.assert_close(a, b)
    assert got[9][0] == 9 and 9 < got[20][0] < 20 and 299 - 100 < got[-1][0] < 299 - 10  # lags up to ~100 steps
    assert torch.equal(outputs[5], torch.full((2,), 5.0))
    assert torch.equal(OutputAverage(0.0).update(outputs[3]), outputs[3])


def test_averaged_fit_keeps_the_moving_average_of_the_same_trajectory(problem):
    """Averaging changes what is kept, not what is learnt: the same steps, averaged; the rules score the average."""
    raw = _fit(problem, steps=30, method="stacked", record_every=1, check_every=15, output_average=0)
    kept = _fit(problem, steps=30, method="stacked", record_every=1, check_every=15, output_average=0.5)
    expected = _moving_average([raw.snapshots[step] for step in range(1, 31)], 0.5)
    for step in range(1, 31):
        np.testing.assert_allclose(kept.snapshots[step], expected[step - 1], atol=1e-5)
    np.testing.assert_allclose(kept.output, expected[-1], atol=1e-5)
    known = problem.target_known[0].numpy()
    rmse = np.sqrt((((expected[-1] - problem.target[0].numpy()) * known) ** 2).sum() / known.sum())
    assert kept.trace[-1].known_rmse == pytest.approx(rmse, rel=1e-4)
    assert kept.trace[-1].known_rmse != pytest.approx(raw.trace[-1].known_rmse, rel=1e-4)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_output_average_decays_outside_0_to_1_are_refused(decay):
    with pytest.raises(InputError, match="averag"):
        Settings(output_average=decay)
