"""flopcalc.emissions: the shipped grid intensity table (every row sourced and dated), the choice of an
intensity, and kg CO2e = kWh x PUE x intensity, exact."""

from fractions import Fraction

import pytest

from flopcalc.compute import Throughput, fleet_estimate
from flopcalc.emissions import DEFAULT_PUE, GridIntensity, emissions_kg, grid_intensities, grid_intensity
from flopcalc.errors import UsageError


def test_every_row_names_its_source_and_year():
    table = grid_intensities()
    assert {"WORLD", "DE", "FR", "IN", "CN"} <= set(table)
    for code, row in table.items():
        assert row.region == code and row.year == 2023
        assert "Ember" in row.source and 0 < row.g_co2e_per_kwh < 1000
    assert (table["DE"].g_co2e_per_kwh, table["FR"].g_co2e_per_kwh, table["WORLD"].g_co2e_per_kwh) == (381, 56, 481)


def test_a_region_is_read_case_blind_and_a_given_figure_is_labelled():
    assert grid_intensity(region="de") == grid_intensities()["DE"]
    given = grid_intensity(250.5)
    assert given == GridIntensity(250.5, "--grid-intensity")
    assert grid_intensity() is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(region="XX"), "--region 'XX' is not in the grid intensity table"),
        (dict(g_co2e_per_kwh=-1.0), "--grid-intensity must be gCO2e/kWh from 0"),
        (dict(g_co2e_per_kwh=float("nan")), "--grid-intensity must be gCO2e/kWh from 0"),
        (dict(g_co2e_per_kwh=300.0, region="DE"), "exclude each other"),
    ],
)
def test_bad_intensities_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        grid_intensity(**kwargs)


def test_kg_co2e_is_kwh_times_pue_times_intensity_exactly():
    throughput = Throughput(989.5e12, 0.3, gpu="H100-SXM")
    grid = grid_intensity(region="DE")
    fleet = fleet_estimate(4.2e22, throughput, 512, tdp_w=700, pue=1.2, grid=grid)
    # the decimal figures as written (0.3 is 3/10, not the nearest double), as flopcalc.compute takes them
    gpu_hours = Fraction("4.2e22") / (Fraction("989.5e12") * Fraction("0.3") * 3600)
    kwh_it = Fraction(700) * gpu_hours / 1000  # the GPUs' own energy
    assert fleet.emissions_kg_co2e == float(kwh_it * Fraction("1.2") * 381 / 1000)
    assert fleet.energy_kwh == float(kwh_it * Fraction("1.2"))
    assert emissions_kg(Fraction(1000), grid) == 381.0  # 1 MWh on Germany's 2023 grid: 381 kg
    data = fleet.to_dict()
    assert data["grid_intensity"] == {"g_co2e_per_kwh": 381.0, "region": "DE", "year": 2023, "source": grid.source}
    assert data["emissions_kg_co2e"] == fleet.emissions_kg_co2e


def test_no_grid_no_keys_and_no_tdp_no_emissions():
    throughput = Throughput(1e12, 0.5)
    assert "emissions_kg_co2e" not in fleet_estimate(1e20, throughput, tdp_w=300).to_dict()
    fleet = fleet_estimate(1e20, throughput, grid=GridIntensity(100.0, "--grid-intensity"))
    assert fleet.emissions_kg_co2e is None and fleet.to_dict()["emissions_kg_co2e"] is None
    assert DEFAULT_PUE == 1.0
