"""`flopcalc check` end to end on examples/mlp.py, with limits set from the MLP's exact analytic counts."""

from __future__ import annotations

import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flopcalc.cli import app
from tests._cli import runner
from tests._killed import killed_while_writing

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# examples/mlp.py: Linear(784, 256) -> ReLU -> Linear(256, 10), counted on a batch of 4
BATCH = 4
PARAMS = 784 * 256 + 256 + 256 * 10 + 10
FORWARD = 2 * BATCH * (784 * 256 + 256 * 10) + BATCH * 256 + BATCH * (256 + 10)  # matmuls, ReLU, bias adds
# weight grads of both layers, the input grad of the second only (the input needs none), ReLU grad, bias grads
BACKWARD = 2 * BATCH * 784 * 256 + 2 * (2 * BATCH * 256 * 10) + BATCH * 256 + BATCH * (256 + 10)
# a wider hidden layer (hidden=264) grows the parameters by 8 * (784 + 1 + 10) = 6360, about 3.1%
WIDER_PARAMS = 784 * 264 + 264 + 264 * 10 + 10


@pytest.fixture
def workdir(tmp_path, monkeypatch, examples):
    """A folder with the example MLP as `mlp.py`, made the current folder (where flopcalc.yaml is looked for)."""
    shutil.copy(examples / "mlp.py", tmp_path / "mlp.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def write_budget(folder: Path, text: str, name: str = "flopcalc.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def mlp_budget(folder: Path, *, forward=FORWARD, backward=BACKWARD, params=PARAMS, hidden=256, extra="") -> Path:
    """An entry `mlp` with the given limits, then the entries in `extra` (a YAML list, any indentation)."""
    entry = f"""
        budgets:
          - name: mlp
            model: mlp.py
            inputs: ["{BATCH}x784"]
            kwargs: {{hidden: {hidden}}}
            max_forward_flops: {forward}
            max_backward_flops: {backward}
            max_params: {params}
        """
    return write_budget(folder, textwrap.dedent(entry) + textwrap.indent(textwrap.dedent(extra), "  "))


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """The source of every model flopcalc counts from here on, in order."""
    import flopcalc.api as api

    sources = []
    real = api.count_spec

    def recording(spec):
        sources.append(spec.source)
        return real(spec)

    monkeypatch.setattr(api, "count_spec", recording)
    return sources


def invoke(*args):
    return runner.invoke(app, ["check", *[str(a) for a in args]])


def check_json(*args) -> tuple[int, dict]:
    result = invoke("--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_within_budget_at_the_exact_counts_passes(workdir):
    mlp_budget(workdir)
    result = invoke()
    assert result.exit_code == 0, result.output
    assert "PASSED: all 3 checks within budget" in result.output
    assert "FAIL" not in result.output


def test_over_budget_by_one_flop_reports_exactly_that_check(workdir):
    mlp_budget(workdir, forward=FORWARD - 1)
    code, data = check_json()
    assert code == 1
    assert data["passed"] is False
    failed = [c for c in data["checks"] if not c["passed"]]
    assert failed == [
        {
            "name": "mlp",
            "model": "mlp.py",
            "metric": "forward_flops",
            "value": FORWARD,
            "limit": FORWARD - 1,
            "passed": False,
            "headroom": round(-1 / (FORWARD - 1) * 100, 4),
        }
    ]
    table = invoke()
    assert table.exit_code == 1
    assert "FAILED: 1 of 3 checks over budget" in table.output
    rows = [line for line in table.output.splitlines() if line.startswith(("PASS ", "FAIL "))]
    assert rows[0].startswith("FAIL") and "forward FLOPs" in rows[0]  # failures come first
    assert sum(row.startswith("FAIL") for row in rows) == 1


TRAINING_ENTRY = """
  - name: mlp-training
    model: mlp.py
    inputs: ["4x784"]
    kwargs: {hidden: 256}
    examples: 60k
    epochs: 2
    max_training_flops: 100G
    max_training_pf_days: 1e-6
"""


def test_json_matches_the_golden_contract(workdir):
    """docs/ci.md documents this shape; regenerate the golden file only for a deliberate change.

    The baseline is recorded at hidden=256, then `mlp` grows to hidden=264 (+3.1%, past the 2% tolerance) and
    its forward limit of 1.6M is exceeded; `mlp-training` stays as recorded and within its limits.
    """
    mlp_budget(workdir, forward="1.6M", extra=TRAINING_ENTRY)
    assert invoke("--update-baseline", "baseline.json").exit_code == 0
    mlp_budget(workdir, forward="1.6M", backward="2M", params="1M", hidden=264, extra=TRAINING_ENTRY)
    code, data = check_json("--baseline", "baseline.json", "--tolerance", "2%")
    assert code == 1
    assert data == json.loads((GOLDEN / "check_mlp.json").read_text())
    training = (FORWARD + BACKWARD) // BATCH * 60_000 * 2
    assert [c["value"] for c in data["checks"][3:]] == [training, training / 8.64e19]
    params = data["regressions"][2]
    assert (params["baseline"], params["value"]) == (PARAMS, WIDER_PARAMS)
    assert [(c["metric"], c["passed"]) for c in data["checks"] if not c["passed"]] == [("forward_flops", False)]
    assert [r["passed"] for r in data["regressions"]] == [False, False, False, True, True, True]


def test_models_shared_by_entries_are_counted_once(workdir, calls):
    mlp_budget(
        workdir,
        extra="""
          - {name: mlp-params, model: mlp.py, inputs: ["4x784"], kwargs: {hidden: 256}, max_params: 1M}
          - {name: mlp-wide, model: mlp.py, inputs: ["4x784"], kwargs: {hidden: 264}, max_params: 1M}
        """,
    )
    assert invoke().exit_code == 0
    assert calls == ["mlp.py", "mlp.py"]  # the first two entries share (model, inputs, kwargs)


# ---------------------------------------------------------------------------------------------------------------
# baselines


def test_update_baseline_writes_counts_and_exits_0_even_over_budget(workdir):
    mlp_budget(workdir, params=PARAMS - 1)
    result = invoke("--update-baseline", "baseline.json")
    assert result.exit_code == 0, result.output
    recorded = json.loads((workdir / "baseline.json").read_text())
    assert recorded == {
        "schema_version": 1,
        "budgets": {"mlp": {"model": "mlp.py", "forward_flops": FORWARD, "backward_flops": BACKWARD, "params": PARAMS}},
    }
    assert not list(workdir.glob(".baseline.json.*"))  # no temporary file left behind


def test_baseline_unchanged_passes(workdir):
    mlp_budget(workdir)
    invoke("--update-baseline", "baseline.json")
    code, data = check_json("--baseline", "baseline.json")
    assert code == 0
    assert [(r["metric"], r["growth_pct"], r["passed"]) for r in data["regressions"]] == [
        ("forward_flops", 0.0, True),
        ("backward_flops", 0.0, True),
        ("params", 0.0, True),
    ]


def test_growth_beyond_tolerance_fails_and_within_tolerance_passes(workdir):
    mlp_budget(workdir, params="1M", forward="1G", backward="1G")
    invoke("--update-baseline", "baseline.json")
    mlp_budget(workdir, params="1M", forward="1G", backward="1G", hidden=264)  # the model grew ~3.1%

    code, data = check_json("--baseline", "baseline.json")  # default tolerance 0
    assert code == 1
    assert all(check["passed"] for check in data["checks"])  # the limits still hold; the growth fails it
    params = next(r for r in data["regressions"] if r["metric"] == "params")
    assert (params["baseline"], params["value"], params["passed"]) == (PARAMS, WIDER_PARAMS, False)
    assert params["growth_pct"] == round((WIDER_PARAMS - PARAMS) / PARAMS * 100, 4)

    assert check_json("--baseline", "baseline.json", "--tolerance", "3%")[0] == 1
    assert check_json("--baseline", "baseline.json", "--tolerance", "0.05")[0] == 0
    code, data = check_json("--baseline", "baseline.json", "--tolerance", "5%")
    assert code == 0 and all(r["tolerance_pct"] == 5.0 for r in data["regressions"])


def test_baseline_and_update_baseline_together_is_bad_input(workdir):
    mlp_budget(workdir)
    result = invoke("--baseline", "a.json", "--update-baseline", "b.json")
    assert result.exit_code == 2
    assert "cannot be used together" in result.output


def test_missing_baseline_is_bad_input(workdir):
    mlp_budget(workdir)
    result = invoke("--baseline", "nope.json")
    assert result.exit_code == 2
    assert "--update-baseline nope.json" in result.output


# ---------------------------------------------------------------------------------------------------------------
# bad input: exit 2, never 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("budgets: [{model: mlp.py, max_parms: 1}]", "budgets[0] (mlp.py): unknown key 'max_parms'"),
        ("budgets: [{model: mlp.py, max_params: 9Q}]", "budgets[0] (mlp.py): key 'max_params'"),
        ("budgets: [{name: a, max_params: 1}]", "budgets[0] (a): missing key 'model'"),
        ("budgets: {model: mlp.py}", "`budgets` must be a list"),
        ("budgets: [{model: mlp.py", "not valid YAML"),
    ],
)
def test_malformed_budget_file_is_one_line_exit_2(workdir, text, message):
    write_budget(workdir, text)
    result = invoke()
    assert result.exit_code == 2
    assert "flopcalc.yaml" in result.output and message in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1


def test_no_budget_file_is_exit_2(workdir):
    result = invoke()
    assert result.exit_code == 2
    assert "no flopcalc.yaml" in result.output and "--budget FILE" in result.output


@pytest.mark.parametrize(
    "source, model, message",
    [
        (None, "missing.py", "not found"),
        ("def build():\n    raise ValueError('broken on purpose')\n", "broken.py", "broken on purpose"),
        (
            "import torch\nclass Bad(torch.nn.Module):\n    def forward(self, x):\n"
            "        raise RuntimeError('forward broke')\ndef build():\n    return Bad()\n",
            "broken.py",
            "forward broke",
        ),
        ("import no_such_module_anywhere\n", "broken.py", "no_such_module_anywhere"),
    ],
)
@pytest.mark.parametrize("fmt", ["table", "json", "junit"])
def test_model_that_cannot_be_counted_exits_2_never_0(workdir, source, model, message, fmt):
    if source is not None:
        (workdir / model).write_text(source)
    write_budget(workdir, f'budgets: [{{name: broken, model: {model}, inputs: ["2x3"], max_params: 1G}}]')
    result = invoke("--format", fmt)
    assert result.exit_code == 2
    assert "budgets[0] (broken)" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert '"passed"' not in result.output and "<testsuites" not in result.output


def test_bad_tolerance_is_exit_2(workdir):
    mlp_budget(workdir)
    assert invoke("--tolerance", "lots").exit_code == 2
    assert invoke("--tolerance", "-1%", "--baseline", "x.json").exit_code == 2


# ---------------------------------------------------------------------------------------------------------------
# JUnit, Markdown, --output, --summary


def test_junit_has_one_testcase_per_check_and_one_failure(workdir):
    mlp_budget(workdir, params=PARAMS - 1)
    result = invoke("--format", "junit", "--output", "report.xml")
    assert result.exit_code == 1
    assert result.stdout == ""
    root = ET.parse(workdir / "report.xml").getroot()
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("flopcalc.budget.mlp", "forward FLOPs"),
        ("flopcalc.budget.mlp", "backward FLOPs"),
        ("flopcalc.budget.mlp", "params"),
    ]
    (failure,) = root.iter("failure")
    assert failure.get("type") == "BudgetExceeded"
    assert f"value={PARAMS} limit={PARAMS - 1}" in failure.text


def test_junit_lists_baseline_comparisons_as_a_second_suite(workdir):
    mlp_budget(workdir)
    invoke("--update-baseline", "baseline.json")
    root = ET.fromstring(invoke("--format", "junit", "--baseline", "baseline.json").stdout)
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in root] == [
        ("budgets", "3", "0"),
        ("baseline", "3", "0"),
    ]


def test_markdown_puts_the_failure_first_with_a_verdict(workdir):
    mlp_budget(workdir, backward=BACKWARD - 1)
    result = invoke("--format", "markdown")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "### ❌ flopcalc budget check failed"
    rows = [line for line in lines if line.startswith("| ✅") or line.startswith("| ❌")]
    assert len(rows) == 3 and rows[0].startswith("| ❌ | mlp | backward FLOPs |")
    assert lines[-1] == "**FAILED: 1 of 3 checks over budget**"


def test_summary_appends_markdown_to_github_step_summary(workdir, monkeypatch):
    mlp_budget(workdir)
    summary = workdir / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = invoke("--summary")
    assert result.exit_code == 0
    assert "PASSED" in result.stdout  # the log still gets the table
    text = summary.read_text()
    assert text.startswith("earlier step\n### ✅ flopcalc budget check passed")
    invoke()  # without --summary nothing is appended
    assert summary.read_text() == text


def test_summary_without_the_variable_writes_nothing(workdir):
    mlp_budget(workdir)
    assert invoke("--summary").exit_code == 0
    assert sorted(p.name for p in workdir.iterdir()) == ["flopcalc.yaml", "mlp.py"]


def test_summary_to_a_path_that_cannot_be_appended_is_one_line_and_no_report(workdir, monkeypatch):
    """$GITHUB_STEP_SUMMARY in a folder that does not exist: exit 2 with one line, not an internal error
    after the table (a CI log with a verdict and then a crash)."""
    mlp_budget(workdir)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(workdir / "gone" / "summary.md"))
    result = invoke("--summary", "--format", "json", "--output", "check.json")
    assert result.exit_code == 2
    assert result.stdout == "" and "GITHUB_STEP_SUMMARY" in result.output  # no report before the error
    assert "internal error" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (workdir / "check.json").exists()


def test_budget_option_reads_another_file(workdir):
    mlp_budget(workdir)
    (workdir / "flopcalc.yaml").rename(workdir / "ci-budget.yaml")
    assert invoke("--budget", "ci-budget.yaml").exit_code == 0


def test_an_onnx_graph_is_checked_with_train_arithmetic_and_its_notes(workdir):
    """Regression: `check` used report.backward (0 for a forward-only ONNX graph), so training FLOPs were 3x
    lower than `train` gave and a max_backward_flops limit always passed. Both now share one function."""
    pytest.importorskip("onnx")
    import warnings

    import torch

    from flopcalc.loaders import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(load_model("mlp.py", device="cpu").module, (torch.randn(4, 784),), "mlp.onnx", dynamo=False)
    forward = 4 * (2 * (784 * 256 + 256 * 10) + 256 + 10 + 256)  # a batch of 4: matmuls, bias adds, ReLU
    Path("flopcalc.yaml").write_text(
        textwrap.dedent(f"""
        budgets:
          - name: graph
            model: mlp.onnx
            max_backward_flops: {2 * forward - 1}
            max_training_flops: 1e20
            examples: 60000
    """)
    )
    result = runner.invoke(app, ["check", "--format", "json"])
    assert result.exit_code == 1, result.output
    values = {c["metric"]: c["value"] for c in json.loads(result.stdout)["checks"]}
    assert values["backward_flops"] == 2 * forward  # assumed 2x forward, and over the limit
    trained = json.loads(runner.invoke(app, ["train", "mlp.onnx", "--examples", "60000", "--format", "json"]).stdout)
    assert values["training_flops"] == trained["training_flops"] == 3 * forward // 4 * 60000
    assert "graph: backward not counted for this source: backward = 2x forward assumed" in result.stderr
    assert "ONNX graphs have no backward pass" in result.stderr
    table = runner.invoke(app, ["check"])
    assert "2x forward assumed" in table.stdout


# ---------------------------------------------------------------------------------------------------------------
# one run, every report: the console table and the files CI keeps come from one count


def test_junit_and_json_files_beside_the_table_from_one_count(workdir, calls):
    mlp_budget(workdir, params=PARAMS - 1)
    result = invoke("--junit", "report.xml", "--json", "report.json")
    assert result.exit_code == 1
    assert "FAILED: 1 of 3 checks over budget" in result.stdout  # the console table
    assert calls == ["mlp.py"]  # counted once for the three outputs
    root = ET.parse(workdir / "report.xml").getroot()
    assert root.get("tests") == "3" and root.get("failures") == "1"
    (failure,) = root.iter("failure")
    assert f"value={PARAMS} limit={PARAMS - 1}" in failure.text
    data = json.loads((workdir / "report.json").read_text())
    assert data["passed"] is False
    assert [c["value"] for c in data["checks"]] == [FORWARD, BACKWARD, PARAMS]
    # the same bytes as the report alone
    alone = invoke("--format", "junit")
    assert (workdir / "report.xml").read_text() == alone.stdout


def test_junit_to_a_missing_folder_is_exit_2_before_counting(workdir):
    mlp_budget(workdir)
    result = invoke("--junit", "missing/report.xml")
    assert result.exit_code == 2
    assert "--junit" in result.output and "missing" in result.output


def test_update_baseline_with_a_report_file_is_bad_input(workdir):
    mlp_budget(workdir)
    result = invoke("--update-baseline", "baseline.json", "--junit", "report.xml")
    assert result.exit_code == 2
    assert not (workdir / "baseline.json").exists() and not (workdir / "report.xml").exists()


def test_a_sigterm_while_the_baseline_is_written_keeps_the_old_one_and_leaves_no_temporary_file(examples, tmp_path):
    """`check --update-baseline` killed (SIGTERM, as CI cancels a job) in the middle of writing the baseline."""
    import signal

    baseline = tmp_path / "baseline.json"
    baseline.write_text("old\n")
    command = f"""
        from flopcalc.cli import main
        sys.argv = ["flopcalc", "check", "--budget", {str(examples / "flopcalc.yaml")!r},
                    "--update-baseline", {str(baseline)!r}]
        main()
    """
    # the baseline, not any other file written on the way
    done = killed_while_writing(command, when="'\"budgets\"' in text", timeout=300, cwd=examples.parent)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert baseline.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["baseline.json"]


def test_a_budget_entrys_attention_window_reaches_the_count(workdir, examples):
    """Mistral-7B's config at 64 tokens: its own 4,096-token window covers them all (the full square); an
    entry's attention_window of 16 counts each query against at most 16 keys, attention_as_math the square."""
    config = examples / "hf" / "mistral-7b" / "config.json"
    write_budget(
        workdir,
        f"""\
        budgets:
          - {{name: window, model: "{config}", seq_len: 64, attention_window: 16, max_forward_flops: 1P}}
          - {{name: square, model: "{config}", seq_len: 64, attention_as_math: true, max_forward_flops: 1P}}
        """,
    )
    code, data = check_json()
    assert code == 0
    forward = {check["name"]: check["value"] for check in data["checks"]}
    # per layer and head: 16*17/2 + (64 - 16)*16 = 904 pairs instead of 64*64; 32 layers, 32 heads of 128
    assert forward["square"] - forward["window"] == 32 * 32 * 2 * (64 * 64 - 904) * (128 + 128)
