"""GPU paths of the bench (CUDA events, tf32 switch, fp8/int8 kernels): run only where CUDA is present."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]


def test_cuda_sweep_gives_plausible_figures_below_the_datasheet():
    from flopcalc.bench.hardware import catalog_peak_resolver
    from flopcalc.bench.matmul import run_matmul_bench

    result = run_matmul_bench("cuda", ["fp32", "bf16"], seconds=6, peak_resolver=catalog_peak_resolver())
    assert result.info.device == "cuda" and result.info.compute_capability
    for item in result.results:
        assert item.median_tflops > 0
        if item.peak_flops:
            assert item.fraction_of_peak < 1.1  # above the dense datasheet peak means a timing bug


def test_tf32_is_faster_than_strict_fp32_where_it_exists():
    from flopcalc.bench.matmul import run_matmul_bench

    if torch.cuda.get_device_capability()[0] < 8 or torch.version.hip:
        pytest.skip("no TF32 on this GPU")
    result = run_matmul_bench("cuda", ["fp32", "tf32"], seconds=6)
    assert result.result_for("tf32").median_tflops > result.result_for("fp32").median_tflops


def test_fp8_and_int8_run_wherever_the_hardware_has_them():
    """On a GPU whose compute capability has fp8/int8 matrix units, a skip means a broken kernel path, so it must
    be measured; on one without, the skip note is exactly the hardware rule's reason."""
    from flopcalc.bench.hardware import catalog_peak_resolver, precision_skip_reason
    from flopcalc.bench.matmul import run_matmul_bench

    result = run_matmul_bench("cuda", ["fp8", "int8", "bf16"], seconds=6, peak_resolver=catalog_peak_resolver())
    measured = {item.precision: item for item in result.results}
    for precision in ("fp8", "int8"):
        reason = precision_skip_reason(result.info, precision)
        if reason is None:
            item = measured.get(precision)
            assert item is not None, f"{precision} not measured on {result.info.device_name}: {result.notes}"
            assert item.median_tflops > 0
            if item.peak_flops:
                assert item.fraction_of_peak < 1.1
        else:
            assert precision not in measured and reason in result.notes


def test_model_step_on_cuda(examples):
    from flopcalc.bench.model import run_model_bench

    result = run_model_bench(f"{examples / 'mlp.py'}:build", inputs=["256x784"], device="cuda", seconds=2)
    assert result.precision in ("bf16", "fp16") and result.achieved_flops > 0
