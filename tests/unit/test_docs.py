"""The words a user reads next to the code: runbooks, the architecture's module list and the
example config's comments say what the project does (issue 17, item 14)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_runbooks_cite_the_projects_own_files():
    cited = []
    for path in sorted((ROOT / "include" / "runbooks").glob("*.md")):
        text = path.read_text()
        assert "operations guide" not in text.lower(), f"{path.name} cites a guide that is not in the repository"
        cited += [(path.name, ref) for ref in re.findall(r"`(include/runbooks/[\w.-]+\.md)`", text)]
    assert cited, "the runbooks name their own files"
    for name, ref in cited:
        assert (ROOT / ref).is_file(), f"{name} cites {ref}, which does not exist"


def test_architecture_lists_each_module_once():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries = [m.group(1) for m in re.finditer(r"^\s*([\w/.*, ]+?\.py|tests/unit, [^\s(]+(?: [^\s(]+)*)\s{2,}(?!\.\.\.)",
                                              layout, re.M)]
    continued = set(re.findall(r"^\s*([\w/.]+\.py)\s+\.\.\.", layout, re.M))
    twice = sorted(name for name, count in Counter(entries).items() if count > 1 and name not in continued)
    assert not twice, f"listed twice in docs/ARCHITECTURE.md: {twice}"
    assert "hooks/atlas.py" in entries and "hooks/storage.py" in entries


def test_example_config_comments_match_the_behaviour():
    text = (ROOT / "include" / "config" / "maintenance.yaml").read_text()
    header = text.split("\nsite:", 1)[0]
    assert "import error" not in header, "a config mistake is not an import error: the last valid config runs"
    assert "last valid" in header and "config" in header
    retries = next(line for line in text.splitlines() if line.strip().startswith("retries:"))
    assert "before anyone is paged" not in retries, "a failing check is not retried: the next run re-checks it"
