"""What the fork server loads before it forks local workers (see `gtmsim.pool`): gtmsim's
experiment engine and the model's compiled kernels, so each worker starts ready to simulate.
"""

from __future__ import annotations

import gtmsim.experiment  # noqa: F401  (the runs' code, imported once for every worker)
from gtmsim import kernels

try:
    # Loads the kernels' machine code from numba's cache (compiling it if the cache is cold),
    # once here instead of once in every worker on its first run.
    kernels.warm()
except Exception:  # noqa: BLE001  a worker that cannot warm up compiles on its first run
    pass
