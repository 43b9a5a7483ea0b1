"""The shipped catalogue validates, traps are stored right, names resolve, bad catalogues fail naming file+entry."""

import re
from fractions import Fraction
from pathlib import Path

import pytest

from flopcalc.catalog import (
    Catalog,
    load_catalog,
    load_catalog_file,
    shipped_catalog_dir,
)
from flopcalc.errors import CatalogError, UsageError
from flopcalc.units import PRECISIONS
from tests._hf_configs import LLAMA_2_7B, write_config

SHIPPED_FILES = sorted(shipped_catalog_dir().glob("*.yaml"))
REQUIRED_IDS = [
    "V100-PCIe",
    "V100-SXM2",
    "V100S-PCIe",
    "A100-SXM4-40GB",
    "A100-SXM4-80GB",
    "A100-PCIe-80GB",
    "H100-SXM",
    "H100-PCIe",
    "H100-NVL",
    "H200-SXM",
    "B200",
    "MI300X",
    "TPU-v4",
    "T4",
    "L4",
    "M2",
    "K80",
    "P100-PCIe",
    "A10",
    "L40S",
    "GB200",
    "RTX-3090",
    "RTX-4090",
    "MI250X",
    "MI325X",
    "TPU-v3",
    "TPU-v5e",
    "TPU-v5p",
    "TPU-v6e",
    "M1",
    "Gaudi2",
    "Gaudi3",
    "TPU-v1",
]
CPU_IDS = ["Xeon-E5-2699v3", "Xeon-8180", "Xeon-8380", "Xeon-8480plus", "EPYC-7763", "EPYC-9654", "Graviton3", "M2-CPU"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(environ={})


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.name)
def test_every_shipped_file_validates_and_cites_sources(path):
    specs = load_catalog_file(path)
    assert specs
    for spec in specs:
        assert spec.sources and all(url.startswith("https://") for url in spec.sources), spec.id
        assert spec.year is not None and spec.memory_gb and spec.memory_bandwidth_gbps, spec.id


def test_catalogue_size_and_required_ids(catalog):
    assert len(SHIPPED_FILES) >= 5
    assert len(catalog) >= 40
    missing = [gpu_id for gpu_id in REQUIRED_IDS if gpu_id not in catalog]
    assert not missing


def test_the_counts_in_the_docs_are_the_catalogues(catalog):
    root = Path(__file__).resolve().parents[1]
    kinds = [spec.kind for spec in catalog]
    counted = (len(kinds) - kinds.count("cpu"), kinds.count("tpu"), kinds.count("cpu"))
    assert re.search(
        r"(\d+) accelerators \((\d+) of them TPUs\) and (\d+) CPUs", (root / "docs" / "catalogue.md").read_text()
    ).groups() == tuple(map(str, counted))
    readme = re.search(r"^(.*?)#\s*(\d+) accelerators and (\d+) CPUs", (root / "README.md").read_text(), re.M)
    assert readme.groups()[1:] == (str(counted[0]), str(counted[2]))
    assert readme.group(1).split() == ["flopcalc", "gpus", "list"]  # the command beside the counts lists them all


@pytest.mark.parametrize(
    "gpu_id, precision, tflops",
    [
        ("V100-PCIe", "fp64", 7),
        ("V100-PCIe", "fp32", 14),
        ("V100-PCIe", "fp16", 112),
        ("V100-SXM2", "fp64", 7.8),
        ("V100-SXM2", "fp32", 15.7),
        ("V100-SXM2", "fp16", 125),
        ("V100S-PCIe", "fp64", 8.2),
        ("V100S-PCIe", "fp32", 16.4),
        ("V100S-PCIe", "fp16", 130),
        ("M2", "fp32", 3.6),
        ("A100-SXM4-80GB", "bf16", 312),
        # datasheets that print only the 2:4-sparse figure: the dense one is half
        ("H100-SXM", "bf16", 989.5),
        ("L4", "bf16", 121),
        ("B200", "bf16", 2250),
        # AMD's 2614.9 is fp16 SPARSE / fp8 dense
        ("MI300X", "bf16", 1307.4),
        ("MI300X", "fp8", 2614.9),
        # per chip / per device, not per board or per 4-chip TPU device
        ("TPU-v3", "bf16", 123),
        ("TPU-v2", "bf16", 45),
        ("K80", "fp32", 4.365),
        ("K80-board", "fp32", 8.73),
        ("MI250X-GCD", "bf16", 191.5),
        ("H100-NVL", "bf16", 835.5),
        ("GB200", "bf16", 2500),
        # GeForce: fp16/bf16 with fp32 accumulate
        ("RTX-4090", "bf16", 165.2),
        ("RTX-3090", "bf16", 71),
        # the TPU paper's chips (Jouppi et al. 2017): TPU v1 int8 only; Haswell at its 2.3 GHz base clock
        ("TPU-v1", "int8", 92),
        ("Xeon-E5-2699v3", "fp32", 1.3248),
        ("Xeon-E5-2699v3", "int8", 2.6496),
        # CPUs: cores x base clock x FLOP/cycle; AMX on Sapphire Rapids; Zen 4 runs AVX-512 at the AVX2 rate
        ("Xeon-8180", "fp64", 2.24),
        ("Xeon-8380", "int8", 23.552),
        ("Xeon-8480plus", "bf16", 114.688),
        ("Xeon-8480plus", "int8", 229.376),
        ("EPYC-7763", "fp32", 5.0176),
        ("EPYC-9654", "fp32", 7.3728),
        ("Graviton3", "fp32", 5.3248),
        ("M2-CPU", "fp32", 0.6016),
    ],
)
def test_dense_peaks_hold_the_datasheet_figures(catalog, gpu_id, precision, tflops):
    assert catalog.resolve(gpu_id).peak_flops(precision) == pytest.approx(tflops * 1e12, rel=1e-12)


def _exact(value) -> Fraction:
    """The number a YAML figure was written as, exactly (2.3 -> 23/10)."""
    return Fraction(repr(value))


@pytest.mark.parametrize("cpu_id", CPU_IDS)
def test_every_cpu_peak_is_cores_times_clock_times_flop_per_cycle(catalog, cpu_id):
    spec = catalog.resolve(cpu_id)
    assert spec.kind == "cpu" and spec.core_groups
    derived = {p for group in spec.core_groups for p in group.flop_per_cycle}
    assert derived == set(spec.peak_tflops)
    for precision, tflops in spec.peak_tflops.items():
        product = sum(
            Fraction(g.cores) * _exact(g.clock_ghz) * _exact(g.flop_per_cycle[precision]) / 1000
            for g in spec.core_groups
            if precision in g.flop_per_cycle
        )
        assert product == _exact(tflops), (cpu_id, precision)
        assert all(g.how[precision] for g in spec.core_groups if precision in g.flop_per_cycle)
    bandwidth = Fraction(spec.memory_channels) * _exact(spec.memory_mt_s) * 8 / 1000
    assert bandwidth == _exact(spec.memory_bandwidth_gbps)


def test_kinds_tpus_are_tpu_cpus_are_cpu_the_rest_gpu(catalog):
    kinds = {spec.id: spec.kind for spec in catalog}
    assert {gpu_id for gpu_id, kind in kinds.items() if kind == "cpu"} == set(CPU_IDS)
    assert {gpu_id for gpu_id, kind in kinds.items() if kind == "tpu"} == {
        spec.id for spec in catalog if spec.id.startswith("TPU-")
    }
    assert kinds["H100-SXM"] == kinds["M2"] == kinds["Gaudi3"] == "gpu"
    assert [spec.id for spec in catalog.select("google", "tpu")][0] == "TPU-v1"
    assert {spec.kind for spec in catalog.select(kind="CPU")} == {"cpu"}
    with pytest.raises(UsageError, match="unknown kind 'fpga'"):
        catalog.select(kind="fpga")
    with pytest.raises(CatalogError, match="no entries of kind cpu from vendor 'google'"):
        catalog.select("google", "cpu")


def test_tpu_v1_is_inference_only_and_says_what_it_has(catalog):
    tpu = catalog.resolve("tpu v1")
    assert tpu.precisions == ("int8",) and tpu.default_precision() == "int8"
    assert (tpu.memory_bandwidth_gbps, tpu.tdp_w, tpu.year) == (34, 75, 2015)
    assert "Inference only" in tpu.notes
    with pytest.raises(UsageError, match=r"TPU-v1 has no bf16 peak .*it has: int8\)$"):
        tpu.peak_flops("bf16")


def test_k80_keeps_boost_figures_and_notes_the_base_clock_ones(catalog):
    k80 = catalog.resolve("K80")
    assert (k80.peak_tflops["fp32"], k80.memory_bandwidth_gbps) == (4.365, 240)
    assert round(2496 * 2 * 0.56 / 1000, 2) == 2.80  # the note's arithmetic, per die at 560 MHz
    assert "2496 cores x 2 x 0.56 GHz = 2.80 TFLOPS" in k80.notes and "160 GB/s" in k80.notes


@pytest.mark.parametrize(
    "model_name, cpu_id",
    [
        ("Intel(R) Xeon(R) CPU E5-2699 v3 @ 2.30GHz", "Xeon-E5-2699v3"),
        ("Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz", "Xeon-8180"),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "Xeon-8380"),
        ("Intel(R) Xeon(R) Platinum 8480+", "Xeon-8480plus"),
        ("AMD EPYC 7763 64-Core Processor", "EPYC-7763"),
        ("AMD EPYC 9654 96-Core Processor", "EPYC-9654"),
        ("Neoverse-V1", "Graviton3"),
        ("Apple M2", "M2-CPU"),
        # other SKUs and chips that merely share digits or a family name
        ("Intel(R) Xeon(R) Platinum 8380HL CPU @ 2.90GHz", None),
        ("Intel(R) Xeon(R) Platinum 8480C", None),
        ("Intel(R) Xeon(R) CPU E5-2699 v4 @ 2.20GHz", None),
        ("AMD EPYC 7763X 64-Core Processor", None),
        ("Apple M2 Pro", None),
        ("Intel(R) Xeon(R) Processor", None),
        ("NVIDIA H100 80GB HBM3", None),
        ("", None),
    ],
)
def test_cpu_model_names_match_only_their_own_entry(catalog, model_name, cpu_id):
    found = catalog.match_cpu(model_name)
    assert (found.id if found else None) == cpu_id


def test_resolve_takes_a_cpu_model_name_and_lecture_spellings(catalog):
    assert catalog.resolve("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz").id == "Xeon-8380"
    assert catalog.resolve("E5-2699v3").id == "Xeon-E5-2699v3"
    assert catalog.resolve("Apple M2").id == "M2"  # the GPU keeps its name; the CPU is M2-CPU
    assert catalog.resolve("m2 cpu").id == "M2-CPU"


def test_sparse_peaks_are_kept_apart_and_never_used(catalog):
    h100 = catalog.resolve("H100-SXM")
    assert h100.sparse_peak_tflops["bf16"] == 1979
    assert h100.datasheet_throughput("bf16").peak_flops == 989.5e12
    assert all(p in PRECISIONS for spec in catalog for p in spec.sparse_peak_tflops)


@pytest.mark.parametrize(
    "name, gpu_id",
    [
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("Tesla V100-SXM2-16GB", "V100-SXM2"),
        ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
        ("NVIDIA H200", "H200-SXM"),
        ("NVIDIA A100-PCIE-40GB", "A100-PCIe-40GB"),
        ("NVIDIA A100 80GB PCIe", "A100-PCIe-80GB"),
        ("Tesla T4", "T4"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("NVIDIA GeForce RTX 3090", "RTX-3090"),
        ("AMD Instinct MI300X", "MI300X"),
        ("Tesla K80", "K80"),
        ("AMD Instinct MI250X", "MI250X-GCD"),
        ("Tesla V100-PCIE-32GB", "V100-PCIe"),
        ("NVIDIA H100 PCIe", "H100-PCIe"),
        ("NVIDIA H100 NVL", "H100-NVL"),
        ("Tesla P100-PCIE-16GB", "P100-PCIe"),
        ("NVIDIA A10", "A10"),
        # forgiving: case, spaces, hyphens, vendor words
        ("h100 sxm", "H100-SXM"),
        ("H100-SXM5-80GB", "H100-SXM"),
        ("v100-sxm2", "V100-SXM2"),
        ("tpu v4", "TPU-v4"),
        ("Google TPU v4", "TPU-v4"),
        ("apple m2", "M2"),
        ("mi300x", "MI300X"),
        ("rtx4090", "RTX-4090"),
    ],
)
def test_resolve_device_names_and_loose_spellings(catalog, name, gpu_id):
    assert catalog.resolve(name).id == gpu_id


@pytest.mark.parametrize(
    "name, candidates",
    [("A100", ["A100-PCIe-40GB", "A100-SXM4-80GB"]), ("H100", ["H100-NVL", "H100-PCIe", "H100-SXM"])],
)
def test_ambiguous_name_lists_candidates(catalog, name, candidates):
    with pytest.raises(CatalogError, match="ambiguous") as info:
        catalog.resolve(name)
    assert all(c in str(info.value) for c in candidates)


def test_unknown_name_suggests_closest_ids(catalog):
    with pytest.raises(CatalogError, match="unknown GPU 'RTX 5090'") as info:
        catalog.resolve("RTX 5090")
    assert "RTX-4090" in str(info.value)


def test_default_precision_is_fastest_16_bit(catalog):
    assert catalog.resolve("V100-SXM2").default_precision() == "fp16"  # no bf16 on Volta
    assert catalog.resolve("H100-SXM").default_precision() == "bf16"  # tie -> bf16
    assert catalog.resolve("MI100").default_precision() == "fp16"  # fp16 184.6 > bf16 92.3
    assert catalog.resolve("M2").default_precision() == "fp32"  # no 16-bit peak published


def test_missing_precision_names_the_ones_the_chip_has(catalog):
    with pytest.raises(UsageError, match=r"T4 has no bf16 peak .*it has: fp32, fp16, int8"):
        catalog.resolve("T4").peak_flops("bfloat16")
    with pytest.raises(UsageError, match="unknown precision"):
        catalog.resolve("T4").peak_flops("fp12")


# ---------------------------------------------------------------- user catalogues and validation

GOOD_ENTRY = """
gpus:
  - id: {id}
    name: Test Accelerator
    vendor: Acme
    aliases: [{alias}]
    peak_tflops: {{bf16: 100, fp32: 10}}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_user_catalogue_adds_and_overrides(tmp_path):
    added = _write(tmp_path, "mine.yaml", GOOD_ENTRY.format(id="X1", alias="Acme X1"))
    override = _write(tmp_path, "override.yaml", GOOD_ENTRY.format(id="T4", alias="my t4"))
    catalog = load_catalog([added, override], environ={})
    assert catalog.resolve("acme x1").id == "X1"
    assert catalog.resolve("T4").peak_flops("bf16") == 100e12
    assert catalog.resolve("my t4").origin == str(override)


def test_env_var_file_or_folder_merges(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    _write(folder, "a.yaml", GOOD_ENTRY.format(id="X1", alias="xa"))
    _write(folder, "b.yml", GOOD_ENTRY.format(id="X2", alias="xb"))
    assert {"X1", "X2"} <= set(load_catalog(environ={"FLOPCALC_GPU_SPECS": str(folder)}).ids())
    single = load_catalog(environ={"FLOPCALC_GPU_SPECS": str(folder / "a.yaml")})
    assert "X1" in single and "X2" not in single


@pytest.mark.parametrize(
    "text, message",
    [
        ("gpus: [\n  - id: X\n", "not valid YAML"),
        (
            "gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: 1}\n    colour: red\n",
            r"entry #1 \('X1'\): unknown key\(s\) colour",
        ),
        ("gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: -1}\n", r"'X1'.*bf16 must be > 0"),
        ("gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: }\n", r"'X1'.*missing a value"),
        ("gpus:\n  - id: X1\n    name: n\n    vendor: v\n", r"'X1'.*missing peak_tflops"),
        ("gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {fp12: 1}\n", "unknown precision 'fp12'"),
        (
            "gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: 100}\n    sparse_peak_tflops: {bf16: 100}\n",
            "not 2x the dense",
        ),
        (
            "gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: 1}\n"
            "  - id: x1\n    name: m\n    vendor: v\n    peak_tflops: {bf16: 1}\n",
            "entry 'x1': duplicate id",
        ),
        ("gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {bf16: 1}\n", None),
        ("hello: 1\n", "'gpus:' list"),
    ],
)
def test_invalid_catalogue_names_file_and_entry(tmp_path, text, message):
    path = _write(tmp_path, "bad.yaml", text)
    if message is None:
        assert load_catalog_file(path)[0].id == "X1"
        return
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog([path], environ={})
    assert str(path) in str(info.value)


def test_alias_clash_with_a_shipped_entry_is_an_error(tmp_path):
    path = _write(tmp_path, "clash.yaml", GOOD_ENTRY.format(id="X1", alias="Tesla T4"))
    with pytest.raises(CatalogError, match=r"entry 'X1': duplicate alias 'Tesla T4', already used by 'T4'"):
        load_catalog([path], environ={})


def test_missing_catalogue_path_names_where_it_came_from(tmp_path):
    with pytest.raises(CatalogError, match=r"nope.yaml \(from --catalog\) does not exist"):
        load_catalog([tmp_path / "nope.yaml"], environ={})
    with pytest.raises(CatalogError, match=r"\(from \$FLOPCALC_GPU_SPECS\) does not exist"):
        load_catalog(environ={"FLOPCALC_GPU_SPECS": str(tmp_path / "nope")})


# ---------------------------------------------------------------- kind: cpu entries

CPU_ENTRY = """
gpus:
  - id: C1
    name: Test CPU
    vendor: Acme
    kind: cpu
    cores: 40
    clock_ghz: 2.3
    clock: base
    flop_per_cycle:
      fp32: {value: 64, how: 2 FMA units x 16 lanes x 2}
    peak_tflops: {fp32: 5.888}
    memory_channels: 8
    memory_mt_s: 3200
    memory_bandwidth_gbps: 204.8
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "{fp32: 5.888}",
            "{fp32: 5.9}",
            r"'C1'\): peak_tflops.fp32 5.9 is not cores x clock_ghz x flop_per_cycle / 1000 = "
            r"\(40 x 2.3 x 64\) / 1000 = 5.888",
        ),
        ("{fp32: 5.888}", "{fp32: 5.888, int8: 23.552}", r"peak_tflops.int8 has no flop_per_cycle.int8"),
        (
            "      fp32: {value: 64,",
            "      fp64: {value: 32, how: x}\n      fp32: {value: 64,",
            r"flop_per_cycle.fp64 has no peak_tflops.fp64 \(add peak_tflops.fp64: 2.944",
        ),
        (
            "bandwidth_gbps: 204.8",
            "bandwidth_gbps: 200",
            r"memory_bandwidth_gbps 200 is not memory_channels x memory_mt_s x 8 B = 8 x 3200 x 8 / 1000 = 204.8 GB/s",
        ),
        ("{value: 64, how: 2 FMA units x 16 lanes x 2}", "64", r"flop_per_cycle.fp32 must be \{value: N, how: TEXT\}"),
        ("clock: base", "clock: turbo", "clock must be one of base, all_core_turbo"),
        ("cores: 40", "cores: 40.5", "cores must be a whole number > 0, got 40.5"),
        ("    cores: 40\n", "", "the entry is missing cores"),
        ("kind: cpu", "kind: fpga", "kind must be one of gpu, tpu, cpu, got 'fpga'"),
        (
            "kind: cpu",
            "kind: gpu",
            "cores, clock_ghz, clock, flop_per_cycle, memory_channels, memory_mt_s apply only to "
            "kind: cpu entries, this one is gpu",
        ),
        ("    memory_mt_s: 3200\n", "", "memory_channels needs memory_channels and memory_mt_s together"),
        (
            "    memory_channels: 8\n",
            "    memory_channels: 8\n    core_groups: []\n",
            "give either cores, clock_ghz, clock, flop_per_cycle or core_groups",
        ),
        ("vendor: Acme\n", "vendor: Acme\n    colour: red\n", r"unknown key\(s\) colour"),
    ],
)
def test_inconsistent_cpu_entries_fail_in_one_line_naming_file_and_entry(tmp_path, old, new, message):
    assert old in CPU_ENTRY
    path = _write(tmp_path, "cpu.yaml", CPU_ENTRY.replace(old, new, 1))
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog([path], environ={})
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_consistent_cpu_entry_loads_and_bandwidth_follows_from_channels(tmp_path):
    path = _write(tmp_path, "cpu.yaml", CPU_ENTRY.replace("    memory_bandwidth_gbps: 204.8\n", ""))
    spec = load_catalog([path], environ={}).resolve("C1")
    assert (spec.kind, spec.cores, spec.memory_bandwidth_gbps) == ("cpu", 40, 204.8)
    assert spec.peak_formula("fp32") == "40 cores x 2.3 GHz (base) x 64 FLOP/cycle"
    assert spec.bandwidth_formula() == "8 channels x 3200 MT/s x 8 B"


HYBRID_ENTRY = """
kind: cpu
gpus:
  - id: H1
    name: Hybrid CPU
    vendor: Acme
    core_groups:
      - {name: performance, cores: 4, clock_ghz: 3.49, clock: max, flop_per_cycle: {fp32: {value: 32, how: a}}}
      - {name: efficiency, cores: 4, clock_ghz: 2.42, clock: max, flop_per_cycle: {fp32: {value: 16, how: b}}}
    peak_tflops: {fp32: PEAK}
"""


def test_core_groups_add_up_and_the_file_sets_the_kind(tmp_path):
    good = load_catalog([_write(tmp_path, "h.yaml", HYBRID_ENTRY.replace("PEAK", "0.6016"))], environ={}).resolve("H1")
    assert (good.kind, good.cores, good.peak_flops("fp32")) == ("cpu", 8, 0.6016e12)
    assert good.peak_formula("fp32") == (
        "4 performance cores x 3.49 GHz (max) x 32 FLOP/cycle + 4 efficiency cores x 2.42 GHz (max) x 16 FLOP/cycle"
    )
    bad = _write(tmp_path, "bad.yaml", HYBRID_ENTRY.replace("PEAK", "0.44672"))  # the performance cores alone
    with pytest.raises(CatalogError, match=r"= \(4 x 3.49 x 32 \+ 4 x 2.42 x 16\) / 1000 = 0.6016"):
        load_catalog([bad], environ={})
    assert load_catalog_file(_write(tmp_path, "g.yaml", GOOD_ENTRY.format(id="X1", alias="x")))[0].kind == "gpu"
    with pytest.raises(CatalogError, match="file-level: kind must be one of"):
        load_catalog([_write(tmp_path, "k.yaml", HYBRID_ENTRY.replace("kind: cpu", "kind: asic"))], environ={})


# ---------------------------------------------------------------- intra-node links

LINKED = "gpus:\n  - id: X1\n    name: n\n    vendor: v\n    peak_tflops: {{bf16: 1}}\n    intra_node_link: {link}\n"


@pytest.mark.parametrize(
    "gpu_id, name, gbps",
    [
        ("P100-SXM2", "NVLink 1", 160),
        ("V100-SXM2", "NVLink 2", 300),
        ("A100-SXM4-80GB", "NVLink 3", 600),
        ("H100-SXM", "NVLink 4", 900),
        ("H200-SXM", "NVLink 4", 900),
        ("B200", "NVLink 5", 1800),
        ("TPU-v5e", "ICI", 400),
        ("TPU-v5p", "ICI", 1200),
        ("TPU-v6e", "ICI", 800),
    ],
)
def test_shipped_link_figures_say_their_direction_and_source(catalog, gpu_id, name, gbps):
    """Datasheets add both directions (H100: 18 NVLinks x 50 GB/s = 900 GB/s): one direction carries half."""
    link = catalog.resolve(gpu_id).intra_node_link
    assert link.name.startswith(name) and link.gbps == gbps and link.bidirectional
    assert link.per_direction_gbps == gbps / 2 and link.source.startswith("https://")
    assert catalog.resolve(gpu_id).to_dict()["intra_node_link"]["per_direction_gbps"] == gbps / 2


def test_pcie_cards_have_no_link_figure(catalog):
    assert all(catalog.resolve(gpu).intra_node_link is None for gpu in ("T4", "H100-PCIe", "A100-PCIe-80GB", "L4"))


@pytest.mark.parametrize(
    "link, message",
    [
        ("{name: L, gbps: 100}", "intra_node_link: missing bidirectional"),
        ("{name: L, gbps: 100, bidirectional: yes please}", "bidirectional must be true"),
        ("{name: L, gbps: -1, bidirectional: false}", "intra_node_link.gbps must be > 0"),
        ("{name: L, gbps: 1, bidirectional: false, speed: 2}", r"unknown key\(s\) speed"),
        ("[1, 2]", "intra_node_link must be a mapping"),
    ],
)
def test_bad_link_entries_name_file_and_entry(tmp_path, link, message):
    path = _write(tmp_path, "bad.yaml", LINKED.format(link=link))
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog([path], environ={})
    assert "'X1'" in str(info.value)


def test_a_per_direction_link_is_taken_as_is(tmp_path):
    path = _write(tmp_path, "one.yaml", LINKED.format(link="{name: L, gbps: 64, bidirectional: false}"))
    assert load_catalog_file(path)[0].intra_node_link.per_direction_gbps == 64


# ---------------------------------------------------------------- hostile files: keys twice, alias bombs, huge files


def test_a_key_given_twice_in_an_entry_is_refused_naming_file_key_and_line(tmp_path):
    path = _write(
        tmp_path,
        "twice.yaml",
        "gpus:\n  - id: X1\n    name: n\n    vendor: v\n    memory_gb: 80\n"
        "    memory_gb: 40\n    peak_tflops: {bf16: 1}\n",
    )
    with pytest.raises(CatalogError, match=r"twice.yaml: not valid YAML: key 'memory_gb' is given twice at line 6"):
        load_catalog([path], environ={})


def test_an_alias_bomb_or_a_huge_catalogue_ends_in_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from flopcalc.cli import app
    from flopcalc.files import MAX_TEXT_FILE_BYTES

    bomb = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, 10):
        bomb += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]\n"
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_TEXT_FILE_BYTES + 1)
    for path, message in (
        (_write(tmp_path, "bomb.yaml", bomb + "gpus: [*a9]\n"), "aliases expand to more than"),
        (huge, "more than the 16 MiB flopcalc reads"),
    ):
        result = CliRunner().invoke(app, ["gpus", "list", "--catalog", str(path)])
        assert result.exit_code == 2 and message in result.output and str(path) in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_schema_reads_every_entry_as_the_records_hold_it(catalog):
    """The pydantic models hand over every key: an entry's JSON names the key the YAML gave."""
    import yaml

    raw = {entry["id"]: entry for path in SHIPPED_FILES for entry in yaml.safe_load(path.read_text())["gpus"]}
    for spec in catalog:
        entry, shown = raw[spec.id], spec.to_dict()
        assert shown["memory_gb"] == entry.get("memory_gb") and shown["tdp_w"] == entry.get("tdp_w"), spec.id
        assert shown["peak_flops"] == {
            p: v * 1e12 for p, v in entry["peak_tflops"].items() if p in shown["peak_flops"]
        }, spec.id
        assert len(shown["peak_flops"]) == len(entry["peak_tflops"]) and shown["sources"] == entry["sources"]


# ------------------------------------------------------------------ memory is binary (issue 19, item 4)


def test_memory_sizes_are_gib_and_every_fit_uses_them(catalog):
    """An "80GB" A100 or H100 has 80 GiB of HBM (85.9e9 bytes): `memory_gb` holds the datasheet's figure in GiB."""
    for name in ("A100-SXM4-80GB", "H100-SXM"):
        assert catalog.resolve(name).memory_bytes == 80 * 2**30 == 85_899_345_920
    assert catalog.resolve("A100-SXM4-40GB").memory_bytes == 40 * 2**30


def test_a_7b_fp16_model_serves_2048_token_prompts_at_batch_52_on_one_a100_80gb(tmp_path):
    """TensorRT-LLM's published Llama-2-7B fp16 run on one A100-80GB: 2,048-token prompts, 128 generated, batch 52.
    Weights 13.48e9 bytes + B x (2,176 tokens x 524,288 bytes of KV cache + the largest prefill layer's 3 x 2,048 x
    11,008 x 2 bytes, the MLP's gate x up product: prefill keeps the last position's logits only) = 79.83e9 bytes at
    B = 52 and 81.11e9 at B = 53: more than 80e9, less than 80 GiB = 85.9e9, so 53 fits only in binary memory."""
    pytest.importorskip("transformers")
    from flopcalc.infer import infer
    from flopcalc.spec import ModelSpec

    config = write_config(tmp_path, LLAMA_2_7B)
    result = infer(
        ModelSpec(config), gpu="A100-SXM4-80GB", precision="fp16", batch_sizes=[52, 53], prompt=2048, generate=128
    )
    published, one_more = result.batches
    assert result.hardware.memory_bytes == 80 * 2**30
    assert published.fits is True
    assert 80e9 < one_more.memory_bytes <= 80 * 2**30 and one_more.fits is True
    assert result.max_batch_that_fits >= 53


@pytest.mark.parametrize(
    "name, chosen",
    [("V100", "V100-SXM2"), (" nvidia A100 ", "A100-SXM4-80GB"), ("Tesla v100", "V100-SXM2"), ("h100", "H100-SXM")],
)
def test_a_bare_family_name_has_a_most_common_variant(name, chosen):
    from flopcalc.catalog import most_common_variant

    assert most_common_variant(name)[0] == chosen
    assert most_common_variant("H100-PCIe") is None and most_common_variant("a100 80gb") is None
