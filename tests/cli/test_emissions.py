"""--pue, --grid-intensity and --region on train, convert and plan through CliRunner: kg CO2e next to kWh, the
sources stated, one-line errors."""

from fractions import Fraction

import pytest

from tests._cli import GPT3_RUN, LLAMA_7B, invoke
from tests._cli import invoke_json as run_json

PLAN = ["plan", *LLAMA_7B, "--gpu", "H100-SXM", "-n", "16", "--tp", "8", "--tokens", "1T"]


def test_train_reports_kg_co2e_from_a_region_and_states_its_sources():
    data = run_json("train", *GPT3_RUN, "-n", "1024", "--pue", "1.1", "--region", "IN")
    gpu_hours = Fraction("3.15e23") / (Fraction("125e12") * Fraction("0.3") * 3600)
    assert data["emissions_kg_co2e"] == float(300 * gpu_hours * Fraction("1.1") / 1000 * 713 / 1000)
    assert data["grid_intensity"]["region"] == "IN" and data["grid_intensity"]["year"] == 2023
    table = invoke("train", *GPT3_RUN, "--region", "IN")
    for text in (
        "emissions",
        "kg CO2e = kWh x 713 gCO2e/kWh",
        "an upper estimate from board power",
        "Uptime Institute",
        "IN 2023: 713 gCO2e/kWh (Ember",
    ):
        assert text in table.stdout, text


def test_convert_adds_energy_and_emissions_only_when_asked():
    plain = run_json("convert", "2500 V100-days")
    assert "energy_kwh" not in plain and "emissions_kg_co2e" not in plain
    data = run_json("convert", "2500 V100-days", "--pue", "1.5", "--grid-intensity", "200")
    assert data["energy_kwh"] == 300 * 60_000 * 1.5 / 1000 == 27_000
    assert data["emissions_kg_co2e"] == 27_000 * 200 / 1000
    assert data["grid_intensity"] == {
        "g_co2e_per_kwh": 200.0,
        "region": None,
        "year": None,
        "source": "--grid-intensity",
    }


def test_plan_reports_kg_co2e_next_to_kwh():
    run = run_json(*PLAN, "--pue", "1.2", "--grid-intensity", "381")["training"]
    assert run["emissions_kg_co2e"] == float(Fraction(run["energy_kwh"]) * 381 / 1000)
    assert "emissions_kg_co2e" not in run_json(*PLAN)["training"]


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--params", "7e9", "--tokens", "1e12", "--gpu", "H100-SXM"],
        ["convert", "100 gpu-days", "--gpu", "H100-SXM"],
        PLAN,
    ],
)
def test_an_unknown_region_is_one_line_and_exit_2(args):
    result = invoke(*args, "--region", "ZZ")
    assert result.exit_code == 2, result.output
    assert "--region 'ZZ' is not in the grid intensity table" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_region_without_a_gpu_is_one_line():
    result = invoke("train", "--params", "7e9", "--tokens", "1e12", "--region", "DE")
    assert result.exit_code == 2 and "need --gpu NAME" in result.stderr
