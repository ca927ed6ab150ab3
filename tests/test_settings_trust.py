"""Code named by settings that came with the data is never imported unless the person allows it.

A data folder may carry a `diagnose.toml` (or sit under a `pyproject.toml`) naming `arch`; a planted
`netdef.py` beside it writes a marker file when imported. Every command that loads a model must
refuse that setting in one line and leave the marker unwritten; `--arch`, the current project's own
settings, and `--trust-settings` still work.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from diagnose.exceptions import UntrustedSetting
from diagnose.io.settings import load_settings, trusted_file

ARCH_SOURCE = '''
import pathlib

from torch import nn

pathlib.Path({marker!r}).write_text("imported")


class Net(nn.Module):
    def __init__(self, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(64, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.act(self.hidden(self.flatten(x))))
'''


def _planted(root: Path, example_data: Path, *, where: str) -> tuple[Path, Path]:
    """A downloaded data folder whose settings name a planted netdef.py: (DATA, marker path).
    where: "data" puts arch in DATA/diagnose.toml, "pyproject" in a pyproject.toml above DATA."""
    marker = root / "MARKER"
    data = root / "download" / "data"
    shutil.copytree(example_data, data)
    if where == "data":
        (data / "netdef.py").write_text(ARCH_SOURCE.format(marker=str(marker)))
        (data / "diagnose.toml").write_text('human_error = 0.01\narch = "netdef.py:Net"\n')
    else:
        (data.parent / "netdef.py").write_text(ARCH_SOURCE.format(marker=str(marker)))
        (data.parent / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.diagnose]\narch = "netdef.py:Net"\n')
    return data, marker


def _commands(weights: Path, data: Path, tmp: Path) -> dict[str, list[object]]:
    return {
        "gaps": ["gaps", weights, data, "--max-items", 10, "--workdir", tmp / "wd"],
        "errors": ["errors", weights, data, "--workdir", tmp / "wd2", "--out", tmp / "sheet.csv", "--no-images"],
        "lr-find": ["lr-find", data, "--steps", 5, "--repeats", 1, "--no-plot"],
        "lr-find-model": ["lr-find", weights, data, "--steps", 5, "--repeats", 1, "--no-plot"],
        "sanity": ["sanity", weights, data],
    }


@pytest.mark.parametrize("where", ["data", "pyproject"])
@pytest.mark.parametrize("command", ["gaps", "errors", "lr-find", "lr-find-model", "sanity"])
def test_code_named_beside_the_data_is_refused_and_never_runs(
    cli, example_formats, example_data: Path, tmp_path: Path, command: str, where: str
) -> None:
    data, marker = _planted(tmp_path, example_data, where=where)
    weights, _ = example_formats.models["state_dict"]
    result = cli(*_commands(weights, data, tmp_path)[command])
    assert not marker.exists(), "the planted file was imported"
    assert result.exit_code == 2, result.output
    shown = "diagnose.toml" if where == "data" else "pyproject.toml (tool.diagnose)"
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("Error: ") and shown in line
    assert "arch = 'netdef.py:Net'" in line and "--arch" in line and "--trust-settings" in line


def test_data_command_reads_the_other_settings_and_imports_nothing(cli, example_data: Path, tmp_path: Path) -> None:
    data, marker = _planted(tmp_path, example_data, where="data")
    result = cli("data", data, "--json")
    assert result.exit_code == 0, result.output
    assert not marker.exists()


def test_arch_on_the_command_line_overrides_the_planted_one(cli, example_formats, example_data: Path,
                                                            example_arch: str, tmp_path: Path) -> None:
    data, marker = _planted(tmp_path, example_data, where="data")
    weights, _ = example_formats.models["state_dict"]
    result = cli("gaps", weights, data, "--arch", example_arch, "--max-items", 10, "--json", "--workdir", tmp_path / "wd")
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert '"human_error": 0.01' in result.stdout  # the non-code setting beside the data is still read


def test_trust_settings_imports_what_the_data_names(cli, example_formats, example_data: Path, tmp_path: Path) -> None:
    data, marker = _planted(tmp_path, example_data, where="data")
    weights, _ = example_formats.models["state_dict"]
    result = cli("gaps", weights, data, "--trust-settings", "--max-items", 10, "--json", "--workdir", tmp_path / "wd")
    assert result.exit_code == 0, result.output
    assert marker.read_text() == "imported"


def test_the_current_projects_own_settings_are_trusted(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "sub").mkdir()
    (project / "pyproject.toml").write_text('[tool.diagnose]\narch = "net.py:Net"\n')
    for cwd in (project, project / "sub"):  # from the project folder or a folder inside it
        assert load_settings(project / "data", {}, cwd=cwd).get("arch") == f"{(project / 'net.py').resolve()}:Net"
    # run from elsewhere, the same file came with the data
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    s = load_settings(project / "data", {}, cwd=elsewhere)
    with pytest.raises(UntrustedSetting, match=r"pyproject.toml \(tool.diagnose\): expected settings that name code"):
        s.get("arch")
    assert s.get("label_column") == "label"  # other keys are read as before
    assert load_settings(project / "data", {}, cwd=elsewhere, trust_settings=True).get("arch").endswith("net.py:Net")


def test_diagnose_toml_is_trusted_only_in_the_current_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "inner").mkdir(parents=True)
    (data / "diagnose.toml").write_text('arch = "pkg.mod:Net"\nhuman_error = 0.02\n')
    assert load_settings(data, {}, cwd=data).get("arch") == "pkg.mod:Net"
    for cwd in (tmp_path, data / "inner"):
        s = load_settings(data, {}, cwd=cwd)
        assert s.get("human_error") == 0.02
        with pytest.raises(UntrustedSetting):
            s.get("arch")
    assert load_settings(data, {"arch": "mine:Net"}, cwd=tmp_path).get("arch") == "mine:Net"


def test_a_module_spec_is_refused_as_well_as_a_file(tmp_path: Path) -> None:
    # `os:system` with arch_kwargs would run a shell command without any file beside the data.
    data = tmp_path / "data"
    data.mkdir()
    (data / "diagnose.toml").write_text('arch = "os:system"\narch_kwargs = {command = "touch x"}\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(UntrustedSetting, match="arch = 'os:system'"):
        load_settings(data, {}, cwd=elsewhere).get("arch")


def test_where_a_file_counts_as_the_projects(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.diagnose]\n")
    assert trusted_file(path, tmp_path)
    assert trusted_file(path, tmp_path / "below")  # run from a folder inside the project
    assert not trusted_file(path, tmp_path.parent)  # the file sits below the current folder
    assert not trusted_file(tmp_path / "missing" / "pyproject.toml", tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_owned_by_another_user_is_not_the_projects(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.diagnose]\n")
    os.chown(path, 65534, 65534)
    assert not trusted_file(path, tmp_path)


def test_the_python_api_never_takes_arch_from_a_settings_file(example_formats, example_data: Path, tmp_path: Path) -> None:
    import diagnose
    from diagnose.exceptions import DiagnoseError

    data, marker = _planted(tmp_path, example_data, where="data")
    weights, _ = example_formats.models["state_dict"]
    with pytest.raises(DiagnoseError, match="arch"):  # a state dict needs arch=, which only the caller gives
        diagnose.gaps(weights, data, workdir=tmp_path / "wd")
    assert not marker.exists()
    report = diagnose.gaps(weights, data, arch=f"{data / 'netdef.py'}:Net", workdir=tmp_path / "wd2", max_items=10)
    assert marker.exists() and report.human_error == 0.01  # named by the caller: imported
