"""The fine-tuning options of train and plan: LoRA adapters and a distillation teacher."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Optional

import typer

from ...adapters import LoraConfig, lora_config
from ...errors import UsageError
from ...spec import ModelSpec, parse_kwargs
from .model import checked_inputs, existing_model
from .params import number, text_option, whole_option

LoraRankOption = whole_option(
    "--lora-rank",
    metavar="R",
    help="Fine-tune with LoRA adapters of rank R (the base frozen): counted and measured with the adapters in the graph.",
)
LoraTargetsOption = text_option(
    "--lora-targets",
    metavar="PATTERN",
    help="With --lora-rank: the layers to adapt, comma-separated module types "
    "(Linear) or name patterns (q_proj,v_proj; 'model.layers.*.mlp.*'); "
    "default every Linear inside the repeated blocks (attention and MLP "
    "projections).",
)
LoraAlphaOption = text_option(
    "--lora-alpha", metavar="ALPHA", help="With --lora-rank: LoRA's alpha (scale alpha / r; default 2r)."
)
AdapterConfigOption = text_option(
    "--adapter-config", metavar="FILE", help="A PEFT adapter_config.json (LoRA) instead of --lora-rank/--lora-targets."
)
TeacherOption = text_option(
    "--teacher",
    metavar="MODEL",
    help="Distillation: the teacher model (any source count takes), frozen; its forward per example is added.",
)
TeacherInputOption = Annotated[
    list[str],
    typer.Option(
        "--teacher-input",
        metavar="SHAPE",
        callback=checked_inputs,
        help="The teacher's --input (repeatable; default: its own example inputs).",
    ),
]
TeacherBatchSizeOption = whole_option(
    "--teacher-batch-size", help="The teacher's --batch-size (default: the student's)."
)
TeacherSeqLenOption = whole_option(
    "--teacher-seq-len", metavar="TOKENS", help="The teacher's --seq-len for a config.json (default: the student's)."
)
TeacherKwargsOption = text_option(
    "--teacher-kwargs", metavar="JSON", help="The teacher's --kwargs (a JSON object for its callable)."
)


def teacher_spec(
    teacher: Optional[str],
    inputs: Iterable[str],
    batch_size: Optional[int],
    seq_len: Optional[int],
    kwargs: Optional[str],
    student: Optional[ModelSpec],
) -> Optional[ModelSpec]:
    """The teacher's ModelSpec: its own options, else the student's batch size and (for a config.json teacher)
    sequence length, so one example is the same example for both. None without --teacher."""
    if teacher is None:
        given = [
            flag
            for flag, value in (
                ("--teacher-input", inputs),
                ("--teacher-batch-size", batch_size),
                ("--teacher-seq-len", seq_len),
                ("--teacher-kwargs", kwargs),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a teacher",
                "give the teacher with --teacher MODEL",
            )
        return None
    existing_model(teacher)
    if student is None:
        raise UsageError(
            "--teacher needs a MODEL (the student) to distil into",
            "give the student as MODEL and the teacher with --teacher",
        )
    if batch_size is None and not inputs:
        batch_size = student.batch_size
    if seq_len is None and teacher.endswith(".json"):
        seq_len = student.seq_len
    return ModelSpec(
        teacher,
        inputs=tuple(inputs),
        batch_size=batch_size,
        kwargs=parse_kwargs(kwargs),
        seq_len=seq_len,
        device=student.device,
    )


def lora_options(
    rank: Optional[int],
    targets: Optional[str],
    alpha: Optional[str],
    adapter_config: Optional[str],
    model: Optional[str],
) -> Optional[LoraConfig]:
    """The LoRA setup of --lora-rank/--lora-targets/--lora-alpha or --adapter-config; None when none is given."""
    config = lora_config(rank, targets, number(alpha, "--lora-alpha"), adapter_config)
    if config is not None and model is None:
        raise UsageError(
            "LoRA needs a MODEL: the adapters are put into its graph", "give a model file or config.json as MODEL"
        )
    return config
