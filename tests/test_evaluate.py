"""Per-item outputs saved by `diagnose gaps` against torch's own functions, item by item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diagnose.evaluate import predict_batch


def test_saved_rows_match_an_independent_computation(cli, example_model: Path, example_data: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    r = cli("gaps", example_model, example_data, "--workdir", tmp_path, "--json")
    assert r.exit_code == 0, r.stderr
    rows = pq.read_table(tmp_path / "predictions" / "dev.parquet").to_pandas()
    model = torch.jit.load(str(example_model), map_location="cpu").eval()
    obj = torch.load(example_data / "dev.pt", weights_only=True)
    x, y = obj["x"].float() / 255.0, obj["y"].long()
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + 1]) for i in range(len(x))])  # one item at a time
    probs = torch.softmax(logits.double(), dim=1).numpy()
    ce = torch.nn.functional.cross_entropy(logits.double(), y, reduction="none").numpy()
    assert rows["index"].tolist() == list(range(len(y)))
    assert rows["label"].tolist() == y.tolist()
    assert rows["pred"].tolist() == probs.argmax(1).tolist()
    np.testing.assert_allclose(rows["confidence"], probs.max(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows["p_label"], probs[np.arange(len(y)), y.numpy()], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows["loss"], ce, rtol=1e-4, atol=1e-5)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :5]
    assert rows[[f"top{k}" for k in range(1, 6)]].to_numpy().tolist() == order.tolist()
    np.testing.assert_allclose(rows[[f"top{k}_p" for k in range(1, 6)]].to_numpy(),
                               np.take_along_axis(probs, order, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("z", [-30.0, -2.0, 0.5, 40.0])
def test_single_logit_is_a_binary_classifier(z: float) -> None:
    class Const(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 0 + z

    y = np.array([0, 1])
    out = predict_batch(Const(), torch.zeros(2, 3), y, metric="error", device=torch.device("cpu"))
    p1 = 1 / (1 + np.exp(-z))
    bce = np.array([np.logaddexp(0.0, z), np.logaddexp(0.0, -z)])  # -log(1 - p1), -log(p1), exactly
    assert out["pred"].tolist() == [int(z > 0)] * 2
    np.testing.assert_allclose(out["p_label"], [1 - p1, p1], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(out["loss"], bce, rtol=1e-5, atol=1e-12)
    assert np.isfinite(out["loss"]).all()  # no log(0) at saturated logits
