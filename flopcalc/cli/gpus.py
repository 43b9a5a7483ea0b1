"""`flopcalc gpus list|show`: browse the GPU catalogue. No torch: answers in well under a second."""

from __future__ import annotations

from typing import Optional

import typer

from ..catalog import load_catalog
from ..errors import CatalogError
from ._app import app, emit
from ._options import CatalogOption, FormatOption, OutputFormat, OutputOption

gpus_app = typer.Typer(
    help="Browse the GPU catalogue (dense peak FLOP/s per precision, memory, TDP, sources).", no_args_is_help=True
)
app.add_typer(gpus_app, name="gpus")


@gpus_app.command("list")
def gpus_list(
    vendor: Optional[str] = typer.Option(
        None, "--vendor", metavar="VENDOR", help="Only this vendor (NVIDIA, AMD, Google, Intel, Apple; prefix ok)."
    ),
    kind: Optional[str] = typer.Option(
        None, "--kind", metavar="gpu|tpu|cpu", help="Only this kind: gpu, tpu or cpu (default: all)."
    ),
    catalog: CatalogOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """List accelerators and CPUs: id, name, year, dense fp32 / 16-bit / fp8 TFLOPS, memory, TDP, int8 TOPS, GB/s."""
    from ..render.gpus import render_list

    specs = load_catalog(catalog or ()).select(vendor, kind)
    emit(render_list(specs, fmt.value), output)


@gpus_app.command("show")
def gpus_show(
    name: str = typer.Argument(
        ..., metavar="NAME", help="An id, alias or torch.cuda.get_device_name() string, e.g. 'h100 sxm'."
    ),
    catalog: CatalogOption = None,
    fmt: FormatOption = OutputFormat.table,
    output: OutputOption = None,
) -> None:
    """Everything the catalogue knows about one accelerator, with its sources."""
    from ..render.gpus import render_show

    try:
        spec = load_catalog(catalog or ()).resolve(name)
    except CatalogError as error:
        if error.hint and "--gpu" in error.hint:  # the resolver speaks to --gpu; here the name is the argument
            raise CatalogError(
                error.message,
                f"pass one of these ids as the name, e.g. `flopcalc gpus show {error.message.rsplit(', ', 1)[-1]}`",
            ) from None
        raise
    emit(render_show(spec, fmt.value), output)
