"""The fine-tuning options of train and plan: LoRA adapters and a distillation teacher."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated, Optional

import typer

from ...adapters import LoraConfig, lora_config
from ...errors import UsageError
from ...spec import ModelSpec, parse_kwargs
from .model import checked_inputs, existing_model
from .params import ReadBack, number, text_option, whole_option

__all__ = [
    "AdapterConfigOption",
    "LoraAlphaOption",
    "LoraOptions",
    "LoraRankOption",
    "LoraTargetsOption",
    "TeacherBatchSizeOption",
    "TeacherInputOption",
    "TeacherKwargsOption",
    "TeacherOption",
    "TeacherOptions",
    "TeacherSeqLenOption",
]

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


@dataclass(frozen=True)
class TeacherOptions(ReadBack):
    """The distillation teacher's options as the command received them; the fields are the options'
    declarations, in the order --help lists them."""

    teacher: TeacherOption = None
    teacher_input: TeacherInputOption = field(default_factory=list)
    teacher_batch_size: TeacherBatchSizeOption = None
    teacher_seq_len: TeacherSeqLenOption = None
    teacher_kwargs: TeacherKwargsOption = None

    def spec(self, student: Optional[ModelSpec]) -> Optional[ModelSpec]:
        """The teacher's ModelSpec: its own options, else the student's batch size and (for a config.json
        teacher) sequence length, so one example is the same example for both. None without --teacher."""
        if self.teacher is None:
            given = [
                f"--{name.replace('_', '-')}" for name, value in asdict(self).items() if name != "teacher" and value
            ]
            if given:
                raise UsageError(
                    f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a teacher",
                    "give the teacher with --teacher MODEL",
                )
            return None
        existing_model(self.teacher)
        if student is None:
            raise UsageError(
                "--teacher needs a MODEL (the student) to distil into",
                "give the student as MODEL and the teacher with --teacher",
            )
        batch_size, seq_len = self.teacher_batch_size, self.teacher_seq_len
        if batch_size is None and not self.teacher_input:
            batch_size = student.batch_size
        if seq_len is None and self.teacher.endswith(".json"):
            seq_len = student.seq_len
        return ModelSpec(
            self.teacher,
            inputs=tuple(self.teacher_input),
            batch_size=batch_size,
            kwargs=parse_kwargs(self.teacher_kwargs),
            seq_len=seq_len,
            device=student.device,
        )


@dataclass(frozen=True)
class LoraOptions(ReadBack):
    """The LoRA options as the command received them; the fields are the options' declarations, in the order
    --help lists them."""

    lora_rank: LoraRankOption = None
    lora_targets: LoraTargetsOption = None
    lora_alpha: LoraAlphaOption = None
    adapter_config: AdapterConfigOption = None

    def config(self, model: Optional[str]) -> Optional[LoraConfig]:
        """The LoRA setup of --lora-rank/--lora-targets/--lora-alpha or --adapter-config; None when none is given."""
        alpha = number(self.lora_alpha, "--lora-alpha")
        config = lora_config(self.lora_rank, self.lora_targets, alpha, self.adapter_config)
        if config is not None and model is None:
            raise UsageError(
                "LoRA needs a MODEL: the adapters are put into its graph", "give a model file or config.json as MODEL"
            )
        return config
