"""Plain-function forms of the negev layers (the modules in :mod:`negev.nn` wrap them).

Pooling:
    :func:`wildcat_pool` (max, GAP, max+min, WELDON, WILDCAT), :func:`lse_pool` (soft, unified),
    :func:`class_wise_pool` (average of the M maps per class).
"""

from negev.nn.functional.class_wise import class_wise_pool
from negev.nn.functional.lse import lse_pool
from negev.nn.functional.wildcat import wildcat_pool

__all__ = ["class_wise_pool", "lse_pool", "wildcat_pool"]
