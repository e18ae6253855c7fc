"""Choosing a default among measured variants (docs/decoding.md §7): the cheapest whose every score is within a
tolerance of the best score of its kind."""

from typing import Dict, Mapping, Optional

ROUNDING = 1e-9   # scores read from JSON: a shortfall equal to the tolerance in decimals counts as within it


def cheapest_within(scores: Mapping[str, Mapping[str, float]], costs: Mapping[str, float],
                    tolerance: float) -> Optional[str]:
    """The variant of least cost among those whose every score is at least the best of that score minus
    `tolerance`.

    Args:
      scores: {variant: {score name: value}} (e.g. "network keypoints_AP"); every variant has the same names.
      costs: {variant: cost} (e.g. milliseconds per image) of at least the variants of `scores`.
      tolerance: how far below the best a score may be.

    Returns:
      the chosen variant (ties: the first in `scores`' order), or None when no variant is within the tolerance
      on every score.
    """
    eligible = [variant for variant, shortfall in worst_shortfalls(scores).items()
                if shortfall <= tolerance + ROUNDING]
    return min(eligible, key=lambda variant: costs[variant]) if eligible else None


def worst_shortfalls(scores: Mapping[str, Mapping[str, float]]) -> Dict[str, float]:
    """{variant: the largest amount by which one of its scores falls below the best of that score}: 0 for a
    variant best on every score; the least tolerance at which `cheapest_within` would accept it."""
    names = {name for values in scores.values() for name in values}
    best: Dict[str, float] = {name: max(values[name] for values in scores.values()) for name in names}
    return {variant: max(best[name] - values[name] for name in names) for variant, values in scores.items()}
