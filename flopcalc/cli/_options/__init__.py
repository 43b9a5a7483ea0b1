"""The options every command shares, declared once: the model options (-> a ModelSpec), the GPU options
(-> a throughput), the fine-tuning options, output format and file; and the one way notes reach stderr.
Each seam is a module here and lists what it shares in its __all__; commands import from the package."""

from __future__ import annotations

from . import finetune, fleet, model, output, params
from .finetune import *  # noqa: F403
from .fleet import *  # noqa: F403
from .model import *  # noqa: F403
from .output import *  # noqa: F403
from .params import *  # noqa: F403

__all__ = [*finetune.__all__, *fleet.__all__, *model.__all__, *output.__all__, *params.__all__]
