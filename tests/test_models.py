"""Model loading by content: every format gives the same logits; pickles never run without trust."""

from __future__ import annotations

import pathlib
import zipfile

import pytest
import torch

from diagnose.exceptions import ModelLoadError, UsageError
from diagnose.io.models import build_arch, describe_input, detect_format, image_channels, load_model

DETECTED = {
    "torchscript": "torchscript",
    "export": "export",
    "state_dict": "torch_zip",
    "state_dict_legacy": "legacy_pickle",
    "lightning": "torch_zip",
    "checkpoint": "torch_zip",
    "safetensors": "safetensors",
    "pickle": "torch_zip",
}
LOADED = {"state_dict_legacy": "state_dict", "lightning": "checkpoint"}


@pytest.fixture(scope="module")
def probe() -> torch.Tensor:
    return torch.rand(17, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("fmt", list(DETECTED))
def test_every_format_loads_to_the_same_logits(fmt, example_formats, example_arch, make_fixtures, probe) -> None:
    path, extra = example_formats.models[fmt]
    assert detect_format(path) == DETECTED[fmt]
    loaded = load_model(path, arch=example_arch if "--arch" in extra else None, trust_pickle="--trust-pickle" in extra)
    assert loaded.format == LOADED.get(fmt, fmt)
    assert loaded.path == path and len(loaded.sha256) == 64
    reference = make_fixtures.load_example_model()
    with torch.no_grad():
        assert torch.allclose(loaded.module(probe), reference(probe), atol=1e-6)


def test_format_is_read_from_content_not_extension(example_formats, tmp_path) -> None:
    path, _ = example_formats.models["safetensors"]
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(path.read_bytes())
    assert detect_format(renamed) == "safetensors"
    ts, _ = example_formats.models["torchscript"]
    (tmp_path / "model.safetensors").write_bytes(ts.read_bytes())
    assert detect_format(tmp_path / "model.safetensors") == "torchscript"


class _Payload:
    """Unpickling this creates a marker file: a stand-in for any code a malicious file would run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_malicious_pickle_never_runs_without_trust(tmp_path, cli, example_data) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(marker)}, evil)
    with pytest.raises(ModelLoadError) as info:
        load_model(evil)
    assert not marker.exists()
    assert "expected tensors only (weights_only=True)" in info.value.message
    assert "torch.save(model.state_dict(), 'weights.pt')" in info.value.message
    r = cli("gaps", evil, example_data)
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: {evil}: expected tensors only")
    assert not marker.exists()
    # The same file with --trust-pickle does run the payload: the check above can fail.
    with pytest.raises(ModelLoadError):
        load_model(evil, trust_pickle=True)
    assert marker.exists()


def test_checkpoint_prefixes_are_stripped(example_arch, make_fixtures, tmp_path) -> None:
    sd = make_fixtures.load_example_model().state_dict()
    for prefix in ("module.", "_orig_mod."):
        path = tmp_path / f"{prefix}ckpt"
        torch.save({"model_state_dict": {prefix + k: v for k, v in sd.items()}, "optimizer": {}}, path)
        loaded = load_model(path, arch=example_arch)
        assert loaded.format == "checkpoint"
        assert torch.equal(loaded.module.state_dict()["out.bias"], sd["out.bias"])


def test_wrong_architecture_is_named(example_formats, example_arch) -> None:
    path, _ = example_formats.models["state_dict"]
    with pytest.raises(ModelLoadError) as info:
        load_model(path, arch=example_arch, arch_kwargs={"hidden": 16})
    assert info.value.message == (
        f"{path}: expected hidden.bias of shape (16,) for --arch {example_arch}, got (32,); "
        "pass the --arch-kwargs the model was trained with"
    )


def test_build_arch_from_module_and_file(example_arch) -> None:
    lin = build_arch("torch.nn:Linear", {"in_features": 3, "out_features": 2})
    assert isinstance(lin, torch.nn.Linear) and lin.out_features == 2
    mlp = build_arch(example_arch, {"hidden": 8})
    assert mlp.hidden.out_features == 8
    with pytest.raises(UsageError, match="expected package.module:factory"):
        build_arch("torch.nn.Linear")
    with pytest.raises(UsageError, match="expected NoSuch in torch.nn"):
        build_arch("torch.nn:NoSuch")


def test_fresh_model_from_arch_alone(example_arch) -> None:
    loaded = load_model(None, arch=example_arch)
    assert loaded.format == "arch" and loaded.sha256 is None and loaded.trainable


def test_model_file_is_hashed_only_when_asked(example_formats) -> None:
    import hashlib

    path, _ = example_formats.models["torchscript"]
    loaded = load_model(path)
    assert "sha256" not in vars(loaded) and "fingerprint" not in vars(loaded)  # diagnose errors and sanity never read the file a second time
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_damaged_archive_member(example_formats, tmp_path) -> None:
    src, _ = example_formats.models["state_dict"]
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            if not item.filename.endswith("data/0"):
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(ModelLoadError, match="expected a complete torch.save file"):
        load_model(bad, arch="torch.nn:Identity")


def test_describe_input_and_channels() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten())
    assert describe_input(conv) == ("(N, 3, H, W)", 3)
    assert image_channels(conv, (32, 32)) == 3
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    assert describe_input(mlp) == ("(N, 784)", None)
    assert image_channels(mlp, (28, 28)) == 1
    assert image_channels(torch.jit.script(mlp), (28, 28)) == 1


def test_export_with_a_fixed_batch_size_runs_any_batch(make_fixtures, tmp_path, probe, cli, example_data, example_counts) -> None:
    model = make_fixtures.load_example_model()
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(7, 1, 8, 8),)), str(path))
    loaded = load_model(path)
    assert loaded.module.size == 7  # wrapped: chunks of 7, the last one padded
    with torch.no_grad():
        assert torch.allclose(loaded.module(probe), model(probe), atol=1e-6)
    r = cli("gaps", path, example_data, "--json", "--workdir", tmp_path / "wd")
    assert r.exit_code == 0, r.stderr
    import json

    assert {s: (v["n"], v["errors"]) for s, v in json.loads(r.stdout)["splits"].items()} == example_counts


@pytest.mark.parametrize("fmt", list(DETECTED))
def test_every_format_truncated_is_a_one_line_error(fmt, example_formats, example_arch, tmp_path) -> None:
    path, extra = example_formats.models[fmt]
    cut = tmp_path / path.name
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.7)])
    with pytest.raises(ModelLoadError) as info:
        load_model(cut, arch=example_arch if "--arch" in extra else None, trust_pickle="--trust-pickle" in extra)
    msg = info.value.message
    assert msg.startswith(f"{cut}: expected a complete ") and "\n" not in msg
