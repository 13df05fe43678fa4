"""A multiple-instance task where negative evidence decides: "contains p and NOT q"."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

BACKGROUND, PATTERN_P, PATTERN_Q = 0, 1, 2


@dataclass
class PresenceAbsenceBags:
    """Bags of region features with bag labels and the role of every region.

    Attributes:
        bags: list of (n_regions_i, n_features) float64 arrays.
        y: (n_bags,) int, 1 when the bag contains pattern p and no pattern q.
        roles: list of (n_regions_i,) int arrays: 0 background, 1 pattern p (positive evidence),
            2 pattern q (negative evidence).
    """

    bags: list[np.ndarray]
    y: np.ndarray
    roles: list[np.ndarray]


def make_presence_absence_bags(
    n_bags: int = 400,
    n_features: int = 10,
    regions: tuple[int, int] = (8, 16),
    noise: float = 0.5,
    separation: float = 8.0,
    random_state: int | np.random.RandomState | None = None,
) -> PresenceAbsenceBags:
    """Generate bags whose class is "contains pattern p and NOT pattern q".

    Each bag draws its size uniformly in ``regions``, background regions from N(0, I), and one of
    four kinds with equal chance: p only (label 1), q only, p and q, neither (label 0). A present
    pattern adds one or two regions ``prototype + N(0, noise^2 I)``; the prototypes p and q are
    random orthogonal directions of norm ``separation``. Max pooling sees p but cannot see that q
    is there; max+min pooling sees both ends.
    """
    rng = check_random_state(random_state)
    # orthogonal directions, so that the difficulty does not depend on the seed
    directions, _ = np.linalg.qr(rng.normal(size=(n_features, 2)))
    prototypes = separation * directions.T
    bags, labels, roles = [], [], []
    for _ in range(n_bags):
        size = int(rng.randint(regions[0], regions[1] + 1))
        kind = int(rng.randint(4))  # 0: p only, 1: q only, 2: both, 3: neither
        features = rng.normal(size=(size, n_features))
        role = np.zeros(size, dtype=int)
        slots = rng.permutation(size)
        used = 0
        for pattern, present in ((PATTERN_P, kind in (0, 2)), (PATTERN_Q, kind in (1, 2))):
            if not present:
                continue
            for _ in range(int(rng.randint(1, 3))):
                slot = slots[used]
                used += 1
                features[slot] = prototypes[pattern - 1] + noise * rng.normal(size=n_features)
                role[slot] = pattern
        bags.append(features)
        labels.append(int(kind == 0))
        roles.append(role)
    return PresenceAbsenceBags(bags, np.array(labels), roles)
