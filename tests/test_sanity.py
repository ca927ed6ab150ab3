"""diagnose.checklist (the checks of `diagnose sanity`) on real models with each defect really induced (fixtures/make_defects.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from diagnose import checklist as S
from fixtures.make_defects import (
    MLP,
    BrokenLinear,
    FunctionalMLP,
    broken_backward_mlp,
    dead_functional_mlp,
    dead_relu_mlp,
    digits,
    fresh_mlp,
    healthy_mlp,
    pinned_sigmoid_mlp,
    saturated_sigmoid_mlp,
    split_arrays,
    zero_init_mlp,
)


@pytest.fixture(scope="module")
def train() -> tuple[np.ndarray, np.ndarray]:
    x, y = digits()
    return split_arrays(x, y)["train"]


@pytest.fixture(scope="module")
def healthy(train) -> MLP:
    return healthy_mlp(*train)


@pytest.fixture(scope="module")
def dead(train) -> MLP:
    return dead_relu_mlp(*train)


@pytest.fixture(scope="module")
def batches(train) -> list[tuple[torch.Tensor, np.ndarray]]:
    x, y = train
    return [(torch.from_numpy(x[i : i + 128]), y[i : i + 128]) for i in range(0, 512, 128)]


@pytest.fixture(scope="module")
def one(train) -> tuple[torch.Tensor, np.ndarray]:
    x, y = train
    idx = np.random.default_rng(0).choice(len(y), 16, replace=False)
    return torch.from_numpy(x[idx]), y[idx]


def _xs(batches):
    return [x for x, _ in batches]


# --- init_loss -----------------------------------------------------------------------------------------


def test_init_loss_fresh_is_ln_c(batches) -> None:
    m = fresh_mlp()
    c = S.check_init_loss(m, batches, source="test")
    with torch.no_grad():
        ref = float(np.mean([nn.functional.cross_entropy(m(x), torch.from_numpy(y), reduction="sum").item() for x, y in batches])) / 128
    assert c.details["loss"] == pytest.approx(ref, rel=1e-5)
    assert c.details["ln_c"] == pytest.approx(math.log(10))
    assert c.status == "pass"


def test_init_loss_fails_on_huge_output_layer(batches) -> None:
    m = fresh_mlp()
    with torch.no_grad():
        m.net[5].weight.mul_(50)
    c = S.check_init_loss(m, batches)
    assert c.status == "fail" and c.details["ratio"] > S.INIT_LOSS_FAIL_HIGH
    assert "final layer" in c.advice


def test_init_loss_warns_on_trained_weights_and_reinitialise_restores(healthy, batches) -> None:
    assert S.check_init_loss(healthy, batches).status == "warn"  # a trained model is not fresh
    fresh = S.reinitialise(healthy)
    assert fresh is not None and fresh is not healthy
    assert S.check_init_loss(fresh, batches).status == "pass"
    assert not torch.equal(fresh.net[1].weight, healthy.net[1].weight)


def test_init_loss_without_fresh_weights_skips(batches) -> None:
    c = S.check_init_loss(None, batches)
    assert c.status == "skip" and "--arch" in c.advice


# --- overfit_batch -------------------------------------------------------------------------------------


def test_overfit_batch_fresh_and_healthy_pass(healthy, one) -> None:
    for m in (fresh_mlp(), healthy):
        before = [p.detach().clone() for p in m.parameters()]
        c = S.check_overfit_batch(m, *one)
        assert c.status == "pass", c.evidence
        assert c.details["final_loss"] <= S.OVERFIT_LOSS and c.details["accuracy"] == 1.0
        assert c.details["reached_at_step"] is not None and c.details["reached_at_step"] < 500
        assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))  # the model is untouched


def test_overfit_batch_fails_on_zero_init_and_dead_relus(dead, one) -> None:
    # The premise, checked rather than assumed: a whole hidden layer of the dead model never fires
    # on the batch, so no gradient reaches the layers before it and the output cannot depend on the item.
    with torch.no_grad():
        h2 = dead.net[3](torch.relu(dead.net[1](one[0])))
    assert bool((h2 <= 0).all())
    for m in (zero_init_mlp(), dead):
        c = S.check_overfit_batch(m, *one)
        assert c.status == "fail", c.evidence
        assert c.details["reached_at_step"] is None
        assert c.details["accuracy"] < 1.0
        assert "After 500 Adam steps" in c.evidence
    c = S.check_overfit_batch(dead, *one, start="the loaded weights")
    assert "from the loaded weights" in c.evidence and c.details["start"] == "the loaded weights"


def test_overfit_batch_torchscript_trains(one) -> None:
    scripted = torch.jit.script(fresh_mlp())
    c = S.check_overfit_batch(scripted, *one)
    assert c.status == "pass", c.evidence


# --- gradcheck -----------------------------------------------------------------------------------------


def test_gradcheck_catches_broken_backward(one) -> None:
    m = broken_backward_mlp()
    c = S.check_gradcheck(m, one[0][:2], one[1][:2])
    assert c.status == "fail"
    assert c.details["failing_params"] == ["net.3.weight"]
    assert c.details["worst"]["rel_error"] >= S.GRADCHECK_FAIL
    # the same bug, seen by torch's own gradcheck on the function
    lin = BrokenLinear(4, 3).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(lambda w: lin.__class__.forward(_with_weight(lin, w), x), (lin.weight.detach().clone().requires_grad_(),))


def _with_weight(lin: nn.Linear, w: torch.Tensor) -> nn.Linear:
    clone = BrokenLinear(lin.in_features, lin.out_features).double()
    del clone.weight
    clone.weight = w  # type: ignore[assignment]
    clone.bias = lin.bias
    return clone


def test_gradcheck_passes_on_healthy_models(healthy, one) -> None:
    for m in (healthy, fresh_mlp(), fresh_mlp(act="sigmoid")):
        c = S.check_gradcheck(m, one[0][:2], one[1][:2])
        assert c.status == "pass", c.evidence
        assert c.details["coordinates"] >= 6
        # spot-check one coordinate's analytic gradient against autograd in float64
        row = c.details["rows"][0]
        md = S.copy_model(m).double().eval()
        loss = nn.functional.cross_entropy(md(one[0][:2].double()), torch.from_numpy(one[1][:2]))
        grad = torch.autograd.grad(loss, dict(md.named_parameters())[row["param"]])[0].reshape(-1)[row["index"]]
        assert row["analytic"] == pytest.approx(float(grad), rel=1e-9, abs=1e-15)


# --- activations ---------------------------------------------------------------------------------------


def test_activations_dead_relus_after_huge_learning_rate(dead, batches) -> None:
    c = S.check_activations(dead, _xs(batches))
    assert c.status == "fail"
    # independent count: hidden pre-activations, unit dead when never positive over the same items
    x = torch.cat(_xs(batches))
    with torch.no_grad():
        h1 = dead.net[1](x)
        h2 = dead.net[3](torch.relu(h1))
    for name, pre in (("net.2", h1), ("net.4", h2)):
        expected = int((pre.max(dim=0).values <= 0).sum())
        assert c.details["layers"][name]["dead"] == expected
    assert max(v["dead_share"] for v in c.details["layers"].values()) >= S.DEAD_FAIL


class _SharedReLU(nn.Module):
    """One nn.ReLU object called after layers of different widths, as many models write it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c, self.act = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10), nn.ReLU()
        with torch.no_grad():
            self.b.bias[:6] = -100.0  # six units of the second call never fire

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.act(self.b(self.act(self.a(x.flatten(1))))))


def test_activations_of_a_module_called_twice_are_two_layers(batches) -> None:
    # The two calls used to be merged into one running max of mismatched widths: a RuntimeError.
    m = _SharedReLU().eval()
    c = S.check_activations(m, _xs(batches))
    x = torch.cat(_xs(batches)).flatten(1)
    with torch.no_grad():
        h1 = m.a(x)
        h2 = m.b(torch.relu(h1))
    assert c.details["layers"] == {
        "act#1": {"kind": "ReLU", "units": 32, "dead": int((h1.max(dim=0).values <= 0).sum()),
                  "dead_share": int((h1.max(dim=0).values <= 0).sum()) / 32},
        "act#2": {"kind": "ReLU", "units": 16, "dead": int((h2.max(dim=0).values <= 0).sum()),
                  "dead_share": int((h2.max(dim=0).values <= 0).sum()) / 16},
    }
    assert c.details["layers"]["act#2"]["dead"] >= 6


def test_activations_saturated_sigmoids(batches) -> None:
    m = saturated_sigmoid_mlp()
    c = S.check_activations(m, _xs(batches))
    assert c.status == "fail"
    x = torch.cat(_xs(batches))
    with torch.no_grad():
        s1 = torch.sigmoid(m.net[1](x))
    near = ((s1 <= S.SATURATION_MARGIN) | (s1 >= 1 - S.SATURATION_MARGIN)).float().mean()
    assert c.details["layers"]["net.2"]["near_bound_share"] == pytest.approx(float(near), rel=1e-6)
    assert "Xavier" in c.advice


def test_activations_a_sigmoid_layer_with_60_percent_pinned_fails(batches) -> None:
    # Counted per unit ("90% of its outputs pinned") this layer looked healthy: no unit reaches 90%.
    m = pinned_sigmoid_mlp()
    c = S.check_activations(m, _xs(batches))
    x = torch.cat(_xs(batches))
    with torch.no_grad():
        s1 = torch.sigmoid(m.net[1](x))
    near = (s1 <= 0.01) | (s1 >= 0.99)
    assert 0.55 < float(near.float().mean()) < 0.65 and int((near.float().mean(dim=0) >= 0.9).sum()) <= 2
    assert c.details["layers"]["net.2"]["near_bound_share"] == pytest.approx(float(near.float().mean()), rel=1e-6)
    assert c.status == "fail" and "net.2 (Sigmoid) 60% of outputs within 1% of a bound" in c.evidence


def test_activations_functional_relus_are_traced(train, batches) -> None:
    # F.relu in forward: no activation module to hook; the trace names each call after its layer.
    dead = dead_functional_mlp(*train)
    c = S.check_activations(dead, _xs(batches))
    assert c.status == "fail" and c.details["functional"] == ["relu"]
    x = torch.cat(_xs(batches))
    with torch.no_grad():
        h1 = dead.fc1(x)
        h2 = dead.fc2(torch.relu(h1))
    for name, pre in (("fc1", h1), ("fc2", h2)):
        assert c.details["layers"][name]["kind"] == "F.relu"
        assert c.details["layers"][name]["dead"] == int((pre.max(dim=0).values <= 0).sum())
    assert "traced in forward" in c.evidence
    # the same design with fresh weights is quiet; a module activation is not counted twice
    torch.manual_seed(0)
    fresh = S.check_activations(FunctionalMLP(), _xs(batches))
    assert fresh.status == "pass", fresh.evidence
    assert set(S.check_activations(fresh_mlp(act="sigmoid"), _xs(batches)).details["layers"]) == {"net.2", "net.4"}


def test_only_and_skip() -> None:
    assert S.select_checks(["init_loss", "activations"], ["activations"]) == {"init_loss"}
    assert S.select_checks(None, ["gradcheck"]) == set(S.CHECK_IDS) - {"gradcheck"}
    from diagnose.exceptions import UsageError

    with pytest.raises(UsageError, match="--skip: expected check ids among init_loss"):
        S.select_checks(None, ["gradchek"])


def test_activations_quiet_on_healthy(healthy, batches) -> None:
    for m in (healthy, fresh_mlp(), fresh_mlp(act="sigmoid"), fresh_mlp(act="tanh")):
        c = S.check_activations(m, _xs(batches))
        assert c.status == "pass", c.evidence


def test_activations_skip_final_sigmoid(batches) -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    with torch.no_grad():
        m[2].weight.mul_(100)  # confident outputs are the output layer's job, not a defect
    c = S.check_activations(m, _xs(batches))
    assert "3" not in c.details["layers"] and "1" in c.details["layers"]


# --- init_scale ----------------------------------------------------------------------------------------


def test_init_scale_numbers_and_defects() -> None:
    m = fresh_mlp()
    c = S.check_init_scale(m)
    assert c.status == "pass"
    row = c.details["layers"]["net.1"]
    assert row["std"] == pytest.approx(float(m.net[1].weight.detach().double().std()))
    assert row["he"] == pytest.approx(math.sqrt(2 / 64)) and row["xavier"] == pytest.approx(math.sqrt(2 / 128))
    z = S.check_init_scale(zero_init_mlp())
    assert z.status == "fail" and "net.1 is all zero" in z.evidence and "symmetry" in z.advice
    assert S.check_init_scale(saturated_sigmoid_mlp()).status == "fail"
    # a zero output layer alone is a known recipe
    m2 = fresh_mlp()
    nn.init.zeros_(m2.net[5].weight)
    assert S.check_init_scale(m2).status == "pass"
    # trained weights: only zero / constant layers count
    big = saturated_sigmoid_mlp()
    assert S.check_init_scale(big, trained=True).status == "pass"


def test_init_scale_conv_fans() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 10))
    c = S.check_init_scale(m)
    assert c.details["layers"]["0"]["fan_in"] == 27 and c.details["layers"]["0"]["fan_out"] == 144


# --- gradient_flow -------------------------------------------------------------------------------------


def test_gradient_flow_ratio_matches_autograd(healthy, one) -> None:
    c = S.check_gradient_flow(healthy, *one)
    assert c.status == "pass"
    m = S.copy_model(healthy)
    loss = nn.functional.cross_entropy(m(one[0]), torch.from_numpy(one[1]))
    g = torch.autograd.grad(loss, [m.net[1].weight, m.net[1].bias, m.net[5].weight, m.net[5].bias])
    rms_first = math.sqrt(float(sum((t.double() ** 2).sum() for t in g[:2])) / (64 * 64 + 64))
    rms_last = math.sqrt(float(sum((t.double() ** 2).sum() for t in g[2:])) / (64 * 10 + 10))
    assert c.details["ratio"] == pytest.approx(rms_first / rms_last, rel=1e-5)


class _HeadFirst(nn.Module):
    """The head defined before the body: definition order is not the order the layers run in."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(64, 10)
        self.body = nn.Sequential(nn.Flatten(), *[m for _ in range(6) for m in (nn.Linear(64, 64), nn.Sigmoid())])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_gradient_flow_reads_layers_in_the_order_they_run(one) -> None:
    # A sigmoid stack vanishes from the output back to the input; read in definition order the
    # "first" layer was the head and the ratio came out above 1.
    m = _HeadFirst()
    c = S.check_gradient_flow(m, *one)
    assert [r["layer"] for r in c.details["layers"]][0] == "body.1" and c.details["layers"][-1]["layer"] == "head"
    loss = nn.functional.cross_entropy(m(one[0]), torch.from_numpy(one[1]))
    g = torch.autograd.grad(loss, [m.body[1].weight, m.body[1].bias, m.head.weight, m.head.bias])
    rms_first = math.sqrt(float(sum((t.double() ** 2).sum() for t in g[:2])) / (64 * 64 + 64))
    rms_last = math.sqrt(float(sum((t.double() ** 2).sum() for t in g[2:])) / (64 * 10 + 10))
    assert c.details["ratio"] == pytest.approx(rms_first / rms_last, rel=1e-5) and c.details["ratio"] < 1


def test_gradient_flow_fails_on_zero_init(one) -> None:
    c = S.check_gradient_flow(zero_init_mlp(), *one)
    assert c.status == "fail" and c.details["ratio"] == 0.0
    assert c.details["zero_gradient"] == ["net.1", "net.3"]


def test_gradient_flow_vanishing_in_deep_saturated_stack(one) -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(8):
        lin = nn.Linear(64, 64)
        with torch.no_grad():
            lin.weight.mul_(0.3)  # small weights through sigmoids: each layer shrinks the gradient ~16x
        layers += [lin, nn.Sigmoid()]
    layers.append(nn.Linear(64, 10))
    c = S.check_gradient_flow(nn.Sequential(*layers), *one)
    assert c.status == "fail" and c.details["ratio"] < 1 / S.FLOW_FAIL


def test_regression_and_binary_tasks(one) -> None:
    torch.manual_seed(0)
    reg = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    y = one[0][:, :3].sum(dim=1).numpy().astype(np.float32)
    assert S.check_overfit_batch(reg, one[0], y).status == "pass"
    assert S.check_init_loss(reg, [(one[0], y)]).status == "skip"
    binary = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    yb = (one[1] % 2).astype(np.int64)
    c = S.check_init_loss(binary, [(one[0], yb)])
    assert c.details["classes"] == 2 and c.status == "pass"
    assert S.check_overfit_batch(binary, one[0], yb).status == "pass"
    assert S.check_gradcheck(binary, one[0][:2], yb[:2]).status == "pass"


class _Frozen(nn.Module):
    """A model whose forward runs under no_grad: nothing can backpropagate through it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.lin(x)


def test_untrainable_model_is_skipped_plainly(one) -> None:
    for check in (S.check_overfit_batch, S.check_gradient_flow):
        c = check(_Frozen(), *one, fmt="pickle")
        assert c.status == "skip", c.evidence
        assert c.evidence.startswith("Cannot backpropagate through this model (")
        assert "--arch" in c.advice
    c = S.check_gradcheck(_Frozen(), one[0][:2], one[1][:2], fmt="export")
    assert c.status == "skip" and c.evidence.startswith("Cannot backpropagate through a torch.export program (")
    frozen = fresh_mlp().requires_grad_(False)
    assert S.check_overfit_batch(frozen, *one).evidence == "The model has no trainable parameters."


class _DictOut(nn.Module):
    """Returns {"logits": ...} as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.body = fresh_mlp()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.body(x)}


def test_dict_outputs_are_read_as_logits(one, batches) -> None:
    m = _DictOut()
    assert S.check_overfit_batch(m, *one).status == "pass"
    assert S.check_init_loss(m, batches).status == "pass"
    assert S.check_gradcheck(m, one[0][:2], one[1][:2]).status == "pass"
    assert S.check_activations(m, _xs(batches)).status == "pass"
    assert S.check_gradient_flow(m, *one).status == "pass"


def test_shared_evaluation_helpers(example_data: Path) -> None:
    # sanity reads outputs and words bad input exactly as gaps does, through evaluate's public helpers.
    from diagnose.evaluate import FORWARD_ERRORS, check_labels, extract_logits, forward_error
    from diagnose.exceptions import DataError, EvaluationError
    from diagnose.io.splits import load_dataset

    t = torch.zeros(2, 3)
    assert extract_logits((t, torch.ones(1))) is t and extract_logits({"logits": t}) is t and extract_logits(t) is t
    with pytest.raises(EvaluationError, match=r"expected forward\(\) to return a tensor of logits, got str"):
        extract_logits("no")
    dev = load_dataset(example_data).splits["dev"]
    with pytest.raises(DataError) as err:
        check_labels(dev, np.array([0, 3, 12]), 10)
    assert err.value.message == (
        f"{dev.path}: expected labels in 0..9 (the model has 10 outputs), got 12 (1 of 3 items); "
        "check that the data and the model use the same classes"
    )
    model = nn.Linear(50, 10)
    with pytest.raises(FORWARD_ERRORS) as exc:
        model(torch.zeros(4, 64))
    assert forward_error(dev, exc.value, model, (4, 64)).message == (
        f"{dev.path}: expected inputs of shape (N, 50) for the model, got (N, 1, 8, 8); reshape the data to what the model takes"
    )
