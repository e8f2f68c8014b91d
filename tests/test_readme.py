"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```sh\n(.*?)\n```", text, re.S)]


def test_the_first_command_installs_and_runs_the_main_job() -> None:
    main_job = readme_commands()[0]
    assert "pip install ." in main_job
    assert "labctl run contrast-curve --sim" in main_job and "in_claims.toml" in main_job


def test_ci_runs_the_readme_test_command() -> None:
    test_command = readme_commands()[1]
    assert "pytest" in test_command and "'.[test]'" in test_command
    assert "blocks[1]" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
