"""What a user's type checker sees of the public API: `make lint` runs mypy --strict on this file, and an
`assert_type` that no longer holds (an export gone to `Any`, a changed return type) fails it. Never run by pytest."""

from __future__ import annotations

import torch
from typing_extensions import assert_type

import flopcalc
from flopcalc import CountReport, ModelSpec
from flopcalc.compute import TrainingCompute
from flopcalc.plan import PlanModel, model_from_params

report = flopcalc.count(torch.nn.Linear(2, 3), (torch.randn(1, 2),))
assert_type(report, CountReport)
assert_type(flopcalc.count("examples/cnn.py:build", ["8x3x32x32"]), CountReport)
assert_type(flopcalc.count(ModelSpec("examples/mlp.py", inputs=("4x784",))), CountReport)
assert_type(flopcalc.training(report, 1000, 3), TrainingCompute)

# a model not at hand: its shape's figures by keyword are each checked
assert_type(model_from_params(6.7e9, 2048, layers=32, hidden=4096, heads=32, mlp="swiglu"), PlanModel)
model_from_params(6.7e9, 2048, layer=32)  # type: ignore[call-arg]
model_from_params(6.7e9, 2048, layers="32")  # type: ignore[arg-type]
