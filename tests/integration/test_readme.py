"""The README's Python example runs as written, and its two set-up commands stay in .ci/run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    (block,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(block.strip().splitlines()) <= 22
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "Newton iterations" in out and "worst IR-drop loss" in out
    assert (tmp_path / "read.nc").is_file()


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    assert len(commands) == 2, "the README gives exactly two set-up commands"
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
