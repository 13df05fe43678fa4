"""The model the engine trains: a plugin's region encoder + an evidence head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from negev.engine.config import RunConfig
from negev.nn import EvidenceHead, EvidenceOutput, create_pool
from negev.plugins import ModalityPlugin

__all__ = ["EvidenceModel", "build_model"]


class EvidenceModel(nn.Module):
    """``forward(inputs) -> EvidenceOutput(scores (B, C), maps (B, C, *regions))``, float32.

    The encoder runs under the caller's autocast (mixed precision); the head always runs in
    float32 on float32 features. An encoder with ``forward_readout(inputs, layers) -> (readout
    (B, K, *regions), mask)`` applies the head's linear maps itself (``layers``:
    :meth:`~negev.nn.EvidenceHead.readout_layers`, in float32) and the head pools their outputs
    (:meth:`~negev.nn.EvidenceHead.from_readout`): the same model without the full
    (B, D, *regions) features (the bags plugin's huge bags).
    """

    def __init__(self, encoder: nn.Module, head: EvidenceHead, started: bool = False):
        super().__init__()
        self.encoder = encoder
        self.head = head
        #: whether the encoder's ``init_head`` wrote a convex fit into the head (a warm start)
        self.started = started

    def begin_training(self, seed: int = 0) -> None:
        """Leave the convex start for training: the encoder's ``begin_training(head)``, where it
        has one and wrote a start (the bags plugin's small instance evidence, from which a top-k
        selection ranks instances as the fit does). Then, where the head pools each map on its
        own and a fit left every map of a class the same (identical maps get identical gradients:
        they would stay one detector), the maps are spread apart around their mean
        (:meth:`~negev.nn.EvidenceHead.spread_maps`, seeded by ``seed``; a class whose fit is 0
        stays tied). The engine calls it once
        the start is scored and saved as epoch 0 (the fit exactly), before the first step."""
        begin = getattr(self.encoder, "begin_training", None)
        if self.started and begin is not None:
            begin(self.head)
        if self.head.pool_each_map and self.head.maps_tied():
            self.head.spread_maps(torch.Generator().manual_seed(seed))

    def forward(self, inputs: Any) -> EvidenceOutput:
        fused = getattr(self.encoder, "forward_readout", None)
        layers = self.head.readout_layers() if fused is not None else None
        if layers is not None:
            # the encoder applies the head's linear maps itself (in float32), e.g. chunk by chunk
            # on huge bags: the full region features never exist
            readout, mask = fused(inputs, layers)
            with torch.autocast(readout.device.type, enabled=False):
                return self.head.from_readout(readout.float(), mask)
        features, mask = self.encoder(inputs)
        with torch.autocast(features.device.type, enabled=False):
            return self.head(features.float(), mask)


def build_model(plugin: ModalityPlugin, config: RunConfig, num_classes: int) -> EvidenceModel:
    """The plugin's encoder topped with the configured pooling head. An encoder with an
    ``init_head(head) -> bool`` method (a convex warm start it carries, e.g. the bags plugin's
    bag-mean logistic regression) initialises the head it is topped with; its answer (whether it
    wrote a fit) is the model's ``started``, which the engine keeps as epoch 0: the model is then
    that fit exactly (what training starts from beyond it: :meth:`EvidenceModel.begin_training`)."""
    encoder = plugin.build_encoder(config.to_dict())
    rows = EvidenceHead.rows_pooled(num_classes, config.num_maps, config.pool_each_map)
    pool = create_pool(config.pooling, num_classes=rows, **config.pooling_params())
    head = EvidenceHead(
        encoder.out_channels, num_classes, config.num_maps, pool, config.pool_each_map
    )
    init_head = getattr(encoder, "init_head", None)
    started = bool(init_head(head)) if init_head is not None else False
    return EvidenceModel(encoder, head, started)
