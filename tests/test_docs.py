"""The docs stay true: option tables match the commands, relative links resolve, nothing points outside."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def _gen_options():
    spec = importlib.util.spec_from_file_location("gen_options", ROOT / "docs" / "gen_options.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_option_tables_match_help():
    gen = _gen_options()
    stale = [str(p.relative_to(ROOT)) for p in gen.stale_files()]
    assert not stale, f"option tables out of date in {', '.join(stale)}: run `python docs/gen_options.py`"


def test_every_command_has_a_page_with_its_options():
    gen = _gen_options()
    for name in gen._commands():
        page = ROOT / "docs" / "commands" / f"{name}.md"
        assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
        assert f"<!-- options: diagnose {name} -->" in page.read_text(encoding="utf-8")


def test_generator_keeps_the_prose_and_skips_unknown_commands():
    gen = _gen_options()
    commands = gen._commands()
    text = (
        "before\n<!-- options: diagnose tally -->\nold table\n<!-- /options -->\nafter\n"
        "<!-- options: diagnose not-yet -->\nkept\n<!-- /options -->\n"
    )
    new = gen.update(text, commands)
    assert new.startswith("before\n<!-- options: diagnose tally -->\n| option | default | meaning |")
    assert "old table" not in new and "`--skip-unmarked` | off |" in new
    assert new.endswith("<!-- /options -->\nafter\n<!-- options: diagnose not-yet -->\nkept\n<!-- /options -->\n")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {', '.join(broken)}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 180, f"README.md has {lines} lines; move the detail to docs/"


# Words about how the project was made, which a reader of the repository cannot follow.
PROVENANCE = re.compile(r"issue [0-9]|the seeds|seed 00|baselines\.md|\.\./shared", re.IGNORECASE)


def test_the_repository_speaks_of_the_product_only():
    places = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder in ("diagnose", "docs", "fixtures", "bench", "tests"):
        places += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".toml", ".txt", ".json"}]
    found = []
    for path in places:
        if "__pycache__" in path.parts or path.stat().st_size > 2_000_000 or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if PROVENANCE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, "cite public sources instead:\n" + "\n".join(found)


def _readme_sessions() -> list[tuple[list[str], list[str]]]:
    """The README's `$ diagnose ...` blocks: (arguments, the output lines shown; `...` elides)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sessions = []
    for block in re.findall(r"^```\n(\$ diagnose .*?)^```", text, re.DOTALL | re.MULTILINE):
        first, *shown = block.splitlines()
        sessions.append((first.split()[2:], [line.rstrip() for line in shown if line.strip() not in ("", "...")]))
    return sessions


def test_readme_walk_through_shows_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of output the README shows is what the command prints now (run in order, in a fresh folder)."""
    from typer.testing import CliRunner

    from diagnose.cli import app

    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    monkeypatch.chdir(tmp_path)
    sessions = _readme_sessions()
    assert [args[0] for args, _ in sessions] == ["gaps", "errors", "curves"]
    for args, shown in sessions:
        result = CliRunner().invoke(app, args, env={"COLUMNS": "100", "TERM": "dumb"})
        assert result.exit_code == 0, result.output
        printed = {line.rstrip() for line in result.output.splitlines()}
        missing = [line for line in shown if line not in printed]
        assert not missing, f"README.md: `diagnose {' '.join(args)}` no longer prints:\n" + "\n".join(missing)
