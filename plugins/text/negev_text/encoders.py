"""Region encoders over token windows: regions are n-grams of the given widths.

Layout of the regions: width by width, windows starting at token 0..L-1, so the region axis has
``len(widths) * L`` entries; window (w, s) is valid when ``s + widths[w] <= length``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negev.nn.functional import row_count_norm
from negev.plugins import RegionEncoder


def window_mask(lengths: Tensor, longest: int, widths: tuple[int, ...]) -> Tensor:
    """(B, len(widths) * L) bool: window (w, s) fits inside the text."""
    starts = torch.arange(longest, device=lengths.device)
    return torch.cat([starts + w <= lengths.unsqueeze(1) for w in widths], dim=1)


class HashedNgramEncoder(RegionEncoder):
    """Each window is its n-gram, hashed into ``buckets`` rows of an embedding (the hashing
    trick: no vocabulary, unseen n-grams share rows with others).

    With a linear head the score of window (w, s) is ``v . E[hash(words[s:s+w])] l_ref / l``,
    one number per n-gram over the text's TF-IDF length ``l``
    (:func:`~negev.nn.functional.row_count_norm` with ``row_weights``, the training texts' idf, 0
    for n-grams no training text has, as outside a vectoriser's vocabulary), times ``l_ref``, a
    training-set constant (the mean of ``l`` per window under a sum, of ``l`` under an average:
    the windows of a text of typical ``l`` per window weigh 1 in all), so sum pooling gives
    ``sum_g count_g idf_g u_g / l + b``: a linear model on
    L2-normalised TF-IDF, as scikit-learn's ``TfidfVectorizer`` gives it (``norm=False``: on the
    counts, and average pooling on the window-averaged counts). Input ``ngrams`` (B,
    len(widths) * L) int64 bucket ids (any value in padding) and ``lengths`` (B,); output (B,
    dim, len(widths) * L) and the window mask.
    """

    row_idf = True

    def __init__(self, buckets: int, widths: tuple[int, ...], dim: int = 32, norm: bool = False):
        super().__init__()
        self.widths = tuple(widths)
        self.embed = nn.Embedding(buckets, dim)
        # Zeros: the model starts as the constant one, and an n-gram never seen in training
        # scores 0 (as in a linear model) instead of a random value that is never trained away.
        nn.init.zeros_(self.embed.weight)
        self.out_channels = dim
        self.row_norm = norm
        if norm:  # every row 1, l_ref 1, until the engine fits them (set_row_weights)
            self.register_buffer("row_weights", torch.ones(buckets))
            self.register_buffer("reference_length", torch.ones(()))

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        rows, mask = self.region_rows(inputs)
        features = self.embed(rows).transpose(1, 2)  # (B, dim, R)
        if self.row_norm:
            length = row_count_norm(rows, mask, self.row_weights)
            scale = torch.where(length > 0, self.reference_length / length.clamp_min(1e-12), 1.0)
            features = features * scale.to(features.dtype)[:, None, None]
        return features, mask

    @torch.no_grad()
    def set_row_weights(self, weights: Tensor, reference: float) -> None:
        """The (buckets,) weights of the n-grams in a text's length (the training texts' idf)
        and the reference ``l_ref`` (:func:`negev.engine.warm_start.fit_row_weights`)."""
        if not self.row_norm:
            raise ValueError("this hashed encoder does not normalise its texts (norm=False)")
        self.row_weights.copy_(weights)
        self.reference_length.fill_(reference)

    def row_table(self) -> Tensor:
        """The embedding (buckets, dim): a window's feature is its n-gram's row (the linear
        path the engine's warm start fits: :mod:`negev.engine.warm_start`)."""
        return self.embed.weight

    def region_rows(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, len(widths) * L) each window's bucket, and the window mask."""
        ngrams = inputs["ngrams"]
        longest = ngrams.shape[1] // len(self.widths)
        return ngrams, window_mask(inputs["lengths"], longest, self.widths)


class ConvWindowEncoder(RegionEncoder):
    """Word embeddings and one 1-D convolution per window width: the feature of window (w, s) is
    the convolution of width w at position s."""

    def __init__(self, vocabulary: int, widths: tuple[int, ...], dim: int = 64, hidden: int = 128):
        super().__init__()
        self.widths = tuple(widths)
        self.embed = nn.Embedding(vocabulary, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, hidden, w) for w in self.widths)
        self.out_channels = hidden

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        ids, lengths = inputs["ids"], inputs["lengths"]
        longest = ids.shape[1]
        embedded = self.embed(ids).transpose(1, 2)  # (B, dim, L)
        features = []
        for width, conv in zip(self.widths, self.convs, strict=True):
            out = torch.relu(conv(F.pad(embedded, (0, width - 1))))  # (B, hidden, L)
            features.append(out)
        return torch.cat(features, dim=2), window_mask(lengths, longest, self.widths)


class TransformerWindowEncoder(RegionEncoder):
    """A ``transformers`` encoder loaded from a local directory (never from a hub, never remote
    code); the feature of window (w, s) is the mean contextual state of its w sub-word tokens."""

    def __init__(self, path: str, widths: tuple[int, ...]):
        super().__init__()
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        self.widths = tuple(widths)
        self.out_channels = self.model.config.hidden_size

    def forward(self, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        ids, lengths = inputs["ids"], inputs["lengths"]
        attention = (torch.arange(ids.shape[1], device=ids.device) < lengths.unsqueeze(1)).long()
        states = self.model(input_ids=ids, attention_mask=attention).last_hidden_state
        states = (states * attention.unsqueeze(2)).transpose(1, 2)  # (B, H, L)
        features = [
            F.avg_pool1d(F.pad(states, (0, w - 1)), kernel_size=w, stride=1) for w in self.widths
        ]
        return torch.cat(features, dim=2), window_mask(lengths, ids.shape[1], self.widths)
