"""Command-line interface: `flopcalc COMMAND`. Each command module registers itself on `app`."""

from __future__ import annotations

from . import bench as _bench  # noqa: F401,E402
from . import check as _check  # noqa: F401,E402
from . import convert as _convert  # noqa: F401,E402

# command modules register themselves on import:
from . import count as _count  # noqa: F401,E402
from . import gpus as _gpus  # noqa: F401,E402
from . import infer as _infer  # noqa: F401,E402
from . import optimal as _optimal  # noqa: F401,E402
from . import plan as _plan  # noqa: F401,E402
from . import train as _train  # noqa: F401,E402
from . import validate as _validate  # noqa: F401,E402
from ._app import app


def main() -> None:
    app()
