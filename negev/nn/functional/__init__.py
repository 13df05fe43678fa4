"""Plain-function forms of the negev layers and losses (the modules in :mod:`negev.nn` wrap them).

Pooling:
    :func:`wildcat_pool` (max, GAP, max+min, WELDON, WILDCAT), :func:`lse_pool` (soft, unified),
    :func:`class_wise_pool` (average of the M maps per class),
    :func:`linear_evidence_pool` (a linear term over every region + gated WILDCAT),
    :func:`wildcat_selection` (which regions WILDCAT keeps, for explanations),
    :func:`linear_softmax_pool`, :func:`attention_pool` (the audio-tagging baselines),
    :func:`instance_mean_pool`, :func:`attention_mil_pool`, :func:`dsmil_pool` (MIL baselines).
Features:
    :func:`row_count_norm` (the L2 norm of an item's weighted row counts: a TF-IDF length).
Losses:
    :func:`ap_svm_loss` (structured AP ranking, exact inference), :func:`mantra_hinge_loss`
    (multi-class structural hinge), :func:`mantra_multilabel_hinge_loss` (one-vs-rest hinge).
"""

from negev.nn.functional.ap_svm import ap_svm_inference, ap_svm_loss
from negev.nn.functional.attention import attention_pool
from negev.nn.functional.class_wise import class_wise_pool
from negev.nn.functional.linear_evidence import linear_evidence_pool
from negev.nn.functional.linear_softmax import linear_softmax_pool
from negev.nn.functional.lse import lse_pool
from negev.nn.functional.mantra import mantra_hinge_loss, mantra_multilabel_hinge_loss
from negev.nn.functional.mil import attention_mil_pool, dsmil_pool, instance_mean_pool
from negev.nn.functional.row_count_norm import row_count_norm
from negev.nn.functional.wildcat import wildcat_pool, wildcat_selection

__all__ = [
    "ap_svm_inference",
    "ap_svm_loss",
    "attention_mil_pool",
    "attention_pool",
    "class_wise_pool",
    "dsmil_pool",
    "instance_mean_pool",
    "linear_evidence_pool",
    "linear_softmax_pool",
    "lse_pool",
    "mantra_hinge_loss",
    "mantra_multilabel_hinge_loss",
    "row_count_norm",
    "wildcat_pool",
    "wildcat_selection",
]
