"""Project settings: DATA/diagnose.toml and [tool.diagnose] in pyproject.toml under the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnose.exceptions import SettingsError, UsageError
from diagnose.io.settings import KEYS, find_pyproject, load_settings


def _project(root: Path, tool: str, data_toml: str | None = None) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.diagnose]\n{tool}\n')
    if data_toml is not None:
        (data / "diagnose.toml").write_text(data_toml)
    return data


def test_command_line_over_data_toml_over_pyproject(tmp_path: Path) -> None:
    data = _project(tmp_path, 'arch = "mynet:MyNet"\nmean = [0.5, 0.4, 0.3]\nstd = 0.2\nhuman_error = 0.05\n'
                               'image_size = 32\nlabel_column = "y"\nclasses = ["a", "b"]\narch_kwargs = {width = 8}',
                    "human_error = 0.02\nlabel_column = 'target'\n")
    s = load_settings(data, {"mean": [0.1]}, cwd=tmp_path)
    assert s.get("mean") == [0.1] and s.source("mean") == "--mean"
    assert s.get("std") == [0.2] and s.source("std").endswith("pyproject.toml (tool.diagnose)")
    assert s.get("human_error") == 0.02 and s.source("human_error").endswith("diagnose.toml")
    assert s.get("label_column") == "target"
    assert s.get("image_size") == (32, 32) and s.get("classes") == ["a", "b"]
    assert s.get("arch_kwargs") == {"width": 8} and s.get("arch") == "mynet:MyNet"
    line = s.describe()
    assert line is not None and "arch mynet:MyNet" in line and "human_error 0.02 from" in line
    assert "mean" not in line and "command line" not in line  # typed options are the person's own
    assert "mean from the command line" in (s.describe(typed=True) or "")
    assert "image_size 32x32" in line
    assert s.to_json()["mean"] == {"value": [0.1], "source": "--mean"}


def test_defaults_and_nothing_to_say(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    s = load_settings(tmp_path / "data", {}, cwd=tmp_path)
    assert s.get("label_column") == "label" and s.source("label_column") == "default"
    assert s.get("mean") is None and s.describe() is None


def test_arch_file_path_is_taken_from_the_pyproject_folder(tmp_path: Path) -> None:
    data = _project(tmp_path, 'arch = "models/net.py:Net"')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    s = load_settings(data, {}, cwd=elsewhere)
    assert s.get("arch") == f"{(tmp_path / 'models' / 'net.py').resolve()}:Net"


def test_nearest_pyproject_with_the_table(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    data = _project(outer, "std = 0.5")
    inner = outer / "sub"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "other"\n')  # no [tool.diagnose]: skipped
    assert find_pyproject(inner) == outer / "pyproject.toml"
    assert find_pyproject(tmp_path) is None
    # DATA's folders first, then the current folder
    assert load_settings(data, {}, cwd=tmp_path).get("std") == [0.5]
    assert load_settings(None, {}, cwd=inner).get("std") == [0.5]


@pytest.mark.parametrize(
    ("line", "key"),
    [("mean = 'a'", "mean"), ("std = [0.2, 0]", "std"), ("image_size = [1, 2, 3]", "image_size"),
     ("classes = []", "classes"), ("classes = ['a', 'a']", "classes"), ("human_error = -1", "human_error"),
     ("arch = 3", "arch"), ("arch_kwargs = 'not json'", "arch_kwargs"), ("human_error_target = true", "human_error_target")],
)
def test_a_bad_value_names_the_file_and_key(tmp_path: Path, line: str, key: str) -> None:
    data = _project(tmp_path, line)
    with pytest.raises(UsageError) as exc:
        load_settings(data, {}, cwd=tmp_path)
    msg = exc.value.message
    assert "pyproject.toml (tool.diagnose)" in msg and f"expected {key} as" in msg and "\n" not in msg


def test_unknown_key_and_broken_toml(tmp_path: Path) -> None:
    data = _project(tmp_path, "means = [0.5]")
    with pytest.raises(UsageError, match="expected keys among .* got 'means'"):
        load_settings(data, {}, cwd=tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.diagnose\n")
    with pytest.raises(SettingsError, match="expected TOML"):  # it names diagnose: it is read, and broken
        load_settings(data, {}, cwd=tmp_path)


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True), st.text(max_size=8),
                    st.lists(st.one_of(st.integers(-2, 300), st.floats(-2, 2), st.text(max_size=3)), max_size=4),
                    st.dictionaries(st.text(min_size=1, max_size=4), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), _values, max_size=4))
def test_any_value_is_a_setting_or_one_clear_error(tmp_path_factory: pytest.TempPathFactory, table: dict) -> None:
    import tomllib

    root = tmp_path_factory.mktemp("fuzz")
    lines = []
    for key, value in table.items():
        if value is None:
            continue
        lines.append(f"{key} = {_toml(value)}")
    text = "\n".join(lines)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    data = _project(root, text)
    try:
        s = load_settings(data, {}, cwd=root)
    except UsageError as exc:
        assert exc.message.startswith(str(root / "pyproject.toml")) or "pyproject.toml" in exc.message
        return
    for key in table:
        if table[key] is not None:
            assert s.source(key) is not None


def _toml(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else "-inf" if value == float("-inf") else repr(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)
