"""The schedules, by their public module name: ``from lit_optim.schedules import Poly``.

They live in :mod:`lit_optim.core.schedules` (a package of one-concern modules); this
module is the stable public path the contract names, and re-exports them all.
"""

from lit_optim.core.schedules import *  # noqa: F403
from lit_optim.core.schedules import __all__  # noqa: F401
