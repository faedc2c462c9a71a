"""Every Python snippet of README.md and docs/*.md runs as written, so what a newcomer
copies cannot rot. The snippets of one page run in order in one fresh interpreter (a
page is one session: later snippets use what earlier ones defined), in an empty folder."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: pathlib.Path) -> list:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)


def test_the_readme_and_the_guide_have_python_snippets():
    assert python_blocks(ROOT / "README.md") and len(python_blocks(ROOT / "docs" / "own_model.md")) >= 4


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_page_snippets_run(page, tmp_path):
    code = "\n".join(python_blocks(page))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def test_docs_build_without_warnings(tmp_path):
    """The Sphinx build (`make docs`) with warnings as errors: a broken cross-reference,
    a docstring that does not parse or a page missing from the table of contents fails."""
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                             "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "html" / "api.html").read_text()
    assert "bnnkit.runtime.Interpreter" in api and "bnnkit.converter.convert" in api
    cli_page = (tmp_path / "html" / "_generated" / "cli.html").read_text()
    assert "bnnkit bench" in cli_page and "--max-steps" in cli_page
