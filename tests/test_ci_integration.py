"""The CI snippets users copy (docs/ci.md) and the shipped pre-commit hook: they parse, validate and run."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pre_commit.clientlib import load_config, load_manifest
from typer.testing import CliRunner

from flopcalc.budget import parse_budgets
from flopcalc.cli import app

ROOT = Path(__file__).resolve().parents[1]
CI_DOC = ROOT / "docs" / "ci.md"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
TINY_BUDGET = 'budgets: [{name: mlp, model: mlp.py, inputs: ["2x784"], max_params: 203530}]\n'


def code_blocks(language: str, section: str | None = None, document: Path = CI_DOC) -> list[str]:
    """The ```language blocks of a Markdown file, optionally only those under the `## section` heading."""
    text = document.read_text(encoding="utf-8")
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def yaml_blocks(section: str | None = None) -> list[str]:
    return code_blocks("yaml", section)


@pytest.fixture
def tiny_project(tmp_path, monkeypatch, examples):
    """A folder with the example MLP and a one-check budget file, as the current folder."""
    shutil.copy(examples / "mlp.py", tmp_path / "mlp.py")
    (tmp_path / "flopcalc.yaml").write_text(TINY_BUDGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def test_every_yaml_block_in_the_ci_doc_parses():
    blocks = yaml_blocks()
    assert len(blocks) == 4  # budget file, Actions job, two pre-commit configs
    for block in blocks:
        yaml.safe_load(block)


def test_the_documented_json_examples_parse_and_use_the_contract_keys():
    """The examples in docs/ci.md show the same keys as the golden output of `check --format json`."""
    golden = json.loads((ROOT / "tests" / "golden" / "check_mlp.json").read_text())
    baseline_example, contract_example = (json.loads(block) for block in code_blocks("json"))
    assert set(baseline_example) == {"schema_version", "budgets"}
    assert set(contract_example) == set(golden)
    assert {tuple(c) for c in contract_example["checks"]} == {tuple(golden["checks"][0])}
    assert {tuple(r) for r in contract_example["regressions"]} == {tuple(golden["regressions"][0])}


def test_the_documented_budget_file_is_valid():
    (example,) = [b for b in yaml_blocks("The budget file") if b.startswith("budgets:")]
    budget_file = parse_budgets(yaml.safe_load(example), Path("docs/ci.md"))
    assert [b.name for b in budget_file.budgets] == ["resnet-inference", "resnet-training", "lm"]


def test_the_github_actions_job_parses_and_its_check_commands_run(tiny_project):
    (job_text,) = yaml_blocks("GitHub Actions")
    workflow = yaml.safe_load(job_text)
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    commands = [line.split("||")[0].strip() for run in runs for line in run.splitlines() if "flopcalc check" in line]
    assert len(commands) == 1  # one run writes the table, the summary and the JUnit report
    runner = CliRunner()
    recorded = runner.invoke(app, ["check", "--update-baseline", "flopcalc-baseline.json"])
    assert recorded.exit_code == 0, recorded.output
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["flopcalc", "check"]
        result = runner.invoke(app, words[1:])
        assert result.exit_code == 0, (command, result.output)
    assert (tiny_project / "flopcalc-junit.xml").is_file()


def test_the_pre_commit_manifest_is_valid_and_its_entry_runs(tiny_project):
    (hook,) = load_manifest(str(HOOKS))  # pre-commit's own schema validation
    assert hook["id"] == "flopcalc-check"
    assert hook["pass_filenames"] is False  # `check` takes no file arguments
    words = shlex.split(hook["entry"])
    assert words[0] == "flopcalc"  # the console script in pyproject.toml; run here as `python -m flopcalc`
    passing = subprocess.run([sys.executable, "-m", "flopcalc", *words[1:]], capture_output=True, text=True)
    assert passing.returncode == 0, passing.stderr
    assert "PASSED" in passing.stdout
    (tiny_project / "flopcalc.yaml").write_text(TINY_BUDGET.replace("203530", "203529"))
    failing = subprocess.run([sys.executable, "-m", "flopcalc", *words[1:]], capture_output=True, text=True)
    assert failing.returncode == 1, failing.stderr


def test_the_documented_pre_commit_configs_are_valid(tmp_path):
    manifest_entry = load_manifest(str(HOOKS))[0]["entry"]
    configs = [b for b in yaml_blocks("pre-commit") if b.startswith("repos:")]
    assert len(configs) == 2
    for index, block in enumerate(configs):
        path = tmp_path / f"config{index}.yaml"
        path.write_text(block)
        (repo,) = load_config(str(path))["repos"]
        (hook,) = repo["hooks"]
        assert hook["id"] == "flopcalc-check"
        if repo["repo"] == "local":
            assert hook["entry"] == manifest_entry


def test_the_readme_budget_example_passes_on_the_shipped_cnn(tmp_path, monkeypatch):
    (example,) = code_blocks("yaml", "CI budget check", ROOT / "README.md")
    budget = tmp_path / "flopcalc.yaml"
    budget.write_text(example)
    monkeypatch.chdir(ROOT)  # the README's model paths are relative to the repository root
    result = CliRunner().invoke(app, ["check", "--budget", str(budget)])
    assert result.exit_code == 0, result.output
