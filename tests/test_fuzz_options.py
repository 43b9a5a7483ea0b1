"""Random and extreme values in every numeric option of every command: never an internal error.

The options are found by walking the typer app, so a new option is fuzzed without touching this file; only
options that take no number are listed (NOT_NUMERIC). Fixed seed, a bounded number of runs, cheap models."""

import random
from pathlib import Path

import pytest
import typer

from flopcalc.cli import app
from tests._cli import LLAMA_7B, runner

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Values no numeric option may take: each must be refused with one line, exit 2.
REFUSED = ["nan", "inf", "-inf", "-1", "1e400", "twelve", "", "0x10", "1e3000000", "--"]
# Values some options take and others refuse: any clean ending (0, 1 or 2) will do, never 3 or a traceback.
EXTREME = [
    "0",
    "1",
    "0.5",
    "1e308",
    "1e-308",
    "1e-300",
    "99999999999999999999",
    str(2**63),
    str(2**31),
    "1e30",
    "5%",
    "100%",
    "1e300%",
    "9G",
    "1Y",
    "1e12x784",
    "99999999999999999999x784",
    "1,2,3",
    "7" * 400,
]

# Options that take no number: files, names, JSON, choices, patterns (the fuzz of those is elsewhere).
NOT_NUMERIC = {
    "MODEL",
    "FILE",
    "NAME",
    "JSON",
    "PATTERN",
    "PRECISION",
    "PRECISION[,...]",
    "DTYPE",
    "FILE|auto",
    "QUANTITY-none",
    "fvcore,torch",
}

# A cheap run of each command that ends cleanly as given; each fuzzed option is added to it.
BASE = {
    "count": [str(EXAMPLES / "mlp.py")],
    "convert": ["1e20 flop", "--gpu", "H100-SXM"],
    "train": ["--params", "1e9", "--tokens", "1e12", "--gpu", "H100-SXM"],
    "plan": [*LLAMA_7B, "--gpu", "H100-SXM", "-n", "8", "--tokens", "1e12"],
    "infer": [str(EXAMPLES / "mlp.py"), "--gpu", "H100-SXM"],
    "check": ["--budget", str(EXAMPLES / "flopcalc.yaml")],
    "validate": [],
    "optimal": ["--compute", "5.76e23", "--gpu", "H100-SXM"],
    # bench measures for real: only values that must be refused reach it (a valid one would start a run)
    "bench": ["--distributed"],
}
SEED, RUNS_PER_OPTION = 25, 4


def numeric_options():
    """(command, option flag, metavar) of every option that takes a value and is not in NOT_NUMERIC."""
    group = typer.main.get_command(app)
    found = []
    for name, command in sorted(group.commands.items()):
        for param in command.params:
            if getattr(param, "is_flag", False) or param.metavar in NOT_NUMERIC:
                continue
            if "|" in (param.metavar or "") and not any(ch.isdigit() for ch in param.metavar):
                continue  # a choice (table|json, adamw|sgd) takes no number
            if param.param_type_name == "argument":
                if name == "convert":  # QUANTITY is a number and a unit
                    found.append((name, None, param.metavar))
                continue
            found.append((name, max(param.opts, key=len), param.metavar))
    return found


OPTIONS = numeric_options()
# bench measures for real: a value it accepts would start a run
EVERY_OPTION_BUT_BENCH = pytest.mark.parametrize(
    "command,flag,metavar",
    [o for o in OPTIONS if o[0] != "bench"],
    ids=[f"{c}{f or ''}" for c, f, _ in OPTIONS if c != "bench"],
)


def test_every_command_with_a_numeric_option_has_a_base_run():
    assert {command for command, _, _ in OPTIONS} <= set(BASE)
    assert len(OPTIONS) > 40  # the walk found the options (a typer change would silently find none)


def command_line(command, flag, value):
    """BASE[command] with `flag` given `value` (as flag=value where the value would read as a flag or is empty)."""
    base = list(BASE[command])
    if flag is None:  # convert's QUANTITY: the value replaces it, with a unit
        base[0] = f"{value} pf-days"
        return [command, *base]
    if value.startswith("-") or not value:
        return [command, *base, f"{flag}={value}"]
    return [command, *base, flag, value]


def invoke(command, flag, value):
    return runner.invoke(app, command_line(command, flag, value))


def assert_clean(result, command, flag, value, allowed=(0, 1, 2)):
    where = f"{command} {flag}={value!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (where, result.exception)
    assert result.exit_code in allowed, (where, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output and "internal error" not in result.output, (where, result.output[-500:])
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("flopcalc: error")]
        assert len(errors) == 1, (where, result.stderr)


@pytest.mark.parametrize("command,flag,metavar", OPTIONS, ids=[f"{c}{f or ''}" for c, f, _ in OPTIONS])
def test_refused_values_are_one_line_and_exit_2(command, flag, metavar):
    rng = random.Random(f"{SEED}{command}{flag}")
    for value in rng.sample(REFUSED, RUNS_PER_OPTION):
        assert_clean(invoke(command, flag, value), command, flag, value, allowed=(2,))


@EVERY_OPTION_BUT_BENCH
def test_extreme_values_end_cleanly(command, flag, metavar):
    rng = random.Random(f"{SEED}{command}{flag}")
    for value in rng.sample(EXTREME, RUNS_PER_OPTION):
        assert_clean(invoke(command, flag, value), command, flag, value)


def _strict_json(text, where):
    import json

    def refuse(name):
        raise AssertionError(f"{where}: {name} in the JSON output")

    return json.loads(text, parse_constant=refuse)


@EVERY_OPTION_BUT_BENCH
def test_json_output_stays_strict_on_extreme_values(command, flag, metavar):
    """Whatever extreme value is accepted, `--format json` holds no Infinity or NaN (strict parsers reject it)."""
    rng = random.Random(f"{SEED}{command}{flag}json")
    value = rng.choice(["1e30", "1e-300", "99999999999999999999", "1e308", str(2**31)])
    result = runner.invoke(app, [*command_line(command, flag, value), "--format", "json"])
    assert_clean(result, command, flag, value)
    if result.exit_code in (0, 1) and result.stdout.strip():
        _strict_json(result.stdout, f"{command} {flag}={value!r}")
