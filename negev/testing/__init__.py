"""Independent reference implementations used by the tests and the benchmarks.

They are written for clarity, not speed: a straightforward algorithm that the fast code in
:mod:`negev.nn` must agree with.
"""

from negev.testing.plugin_check import check_plugin
from negev.testing.reference import (
    brute_force_ap_svm_loss,
    loop_ap_svm,
    naive_lse_pool,
    naive_wildcat_pool,
    sort_wildcat_pool,
)

__all__ = [
    "check_plugin",
    "brute_force_ap_svm_loss",
    "loop_ap_svm",
    "naive_lse_pool",
    "naive_wildcat_pool",
    "sort_wildcat_pool",
]
