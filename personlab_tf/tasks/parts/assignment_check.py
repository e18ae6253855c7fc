"""How often a matcher of parts.matching gives the exact maximum-weight assignment.

Used by tests/test_parts_matching.py and `scripts/benchmark.py matching`; the exact assignment comes from
the caller (scipy's Hungarian solver there).
"""

from typing import Callable, Tuple

import numpy as np


def random_score_matrices(count: int, largest: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """`count` score matrices of random sizes m x n, 1 <= m, n <= largest, entries U(0, 1), padded.

    Returns:
      (scores [count, largest, largest] float32, valid [count, largest, largest] bool).
    """
    rng = np.random.default_rng(seed)
    scores = np.zeros((count, largest, largest), np.float32)
    valid = np.zeros_like(scores, bool)
    for index in range(count):
        rows, columns = rng.integers(1, largest + 1, 2)
        scores[index, :rows, :columns] = rng.random((rows, columns))
        valid[index, :rows, :columns] = True
    return scores, valid


def exact_matching(scores: np.ndarray, valid: np.ndarray, linear_sum_assignment: Callable) -> np.ndarray:
    """The maximum-weight assignment of one padded matrix as a bool matrix of its shape.

    Args:
      scores, valid: [largest, largest]; linear_sum_assignment: scipy.optimize.linear_sum_assignment.
    """
    rows, columns = int(valid.any(axis=1).sum()), int(valid.any(axis=0).sum())
    chosen = np.zeros_like(valid)
    r, c = linear_sum_assignment(scores[:rows, :columns], maximize=True)
    chosen[r, c] = True
    return chosen


def agreement(matchings: np.ndarray, scores: np.ndarray, valid: np.ndarray,
              linear_sum_assignment: Callable) -> float:
    """Fraction of matrices whose matching (bool [count, largest, largest]) equals the exact assignment."""
    same = [np.array_equal(matchings[i], exact_matching(scores[i], valid[i], linear_sum_assignment))
            for i in range(len(matchings))]
    return float(np.mean(same))
