"""Summary statistics over seeds: mean, sample standard deviation, 95% confidence interval."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Two-sided 95% critical values of Student's t by degrees of freedom (from standard tables);
# beyond 30 the normal value is within 2%.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}  # fmt: skip


def t_critical(df: int) -> float:
    """t such that P(|T| <= t) = 0.95 for `df` degrees of freedom."""
    return _T975.get(df, 1.960)


@dataclass
class Spread:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one value
    low: float  # 95% confidence interval of the mean (equal to the mean for one value)
    high: float

    def overlaps(self, other: Spread) -> bool:
        """Whether the two intervals share any value (then the means are not told apart)."""
        return self.low <= other.high and other.low <= self.high


def spread(values: list[float]) -> Spread:
    """Mean, standard deviation and t-based 95% interval of the mean."""
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return Spread(1, mean, 0.0, mean, mean)
    std = statistics.stdev(values)
    half = t_critical(len(values) - 1) * std / math.sqrt(len(values))
    return Spread(len(values), mean, std, mean - half, mean + half)
