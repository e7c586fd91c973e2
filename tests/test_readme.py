from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line for b in blocks[:2] for line in b.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_command():
    first_line = (REPO / "README.md").read_text().splitlines()[2]
    assert first_line.startswith("genar predicts spatial gene expression")
    demo, tests = _commands()
    assert "pip install -e ." in demo and "genar" in demo
    assert tests.endswith("python -m pytest")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci  # CI runs exactly the README's test command
