"""Every Python snippet of README.md runs as written (in a fresh interpreter, in an empty
folder), so the first thing a newcomer copies cannot rot."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def snippets() -> list:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)):
            out.append(pytest.param(m.group(1), id=f"{doc.name}-{i}"))
    return out


def test_the_readme_has_a_python_snippet():
    assert any(p.id.startswith("README.md") for p in snippets())


@pytest.mark.parametrize("code", snippets())
def test_snippet_runs(code, tmp_path):
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
