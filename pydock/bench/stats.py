"""The statistics of ``pydock bench``: medians with intervals, ratios, verdicts and flags.

Few samples (3 to 10) of skewed timings: everything here is distribution-free and exact, with
no random resampling, so the same samples always give the same report.

- The median's interval comes from order statistics: ``[x(k), x(n-k+1)]`` holds the true median
  with probability ``1 - 2 P(B <= k-1)``, ``B ~ Binomial(n, 1/2)``. The widest ``k`` reaching
  95% is used; with 5 samples or fewer no pair reaches it, so the interval is the whole range
  and its real coverage (94% for 5, 88% for 4, 75% for 3) is reported with it.
- A ratio's interval is the quotient of the two intervals (its lowest and highest possible
  value), so it excludes 1 exactly when the two medians' intervals do not overlap, and the
  verdict ("faster", "slower") is given only then; otherwise "no difference".
- "drift" flags a monotone trend across rounds (Kendall's tau, exact p < 0.05, and a change of
  at least 10% of the median); "bimodal" flags samples that fall in two separate groups.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95
DRIFT_P = 0.05
DRIFT_MIN_CHANGE = 0.10  # a significant trend smaller than this share of the median is noise
BIMODAL_GAP = 3.0  # the gap between the groups against the widest group's own range
BIMODAL_RATIO = 1.5  # and the groups' medians at least this far apart

FASTER, SLOWER, SAME = "faster", "slower", "no difference"
BIMODAL, DRIFT = "bimodal", "drift"


@dataclass(frozen=True)
class Interval:
    """A confidence interval and the probability it really has."""

    low: float
    high: float
    coverage: float

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high


def _binomial_cdf(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return float(sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def median_interval(samples: list[float], level: float = LEVEL) -> Interval | None:
    """The order-statistics interval of the median; None under two samples."""
    n = len(samples)
    if n < 2:
        return None
    ordered = sorted(samples)
    k = 1  # 1-based rank of the lower bound; k = 1 is the whole range
    while k + 1 <= n // 2 and 1 - 2 * _binomial_cdf(k, n) >= level:
        k += 1
    coverage = 1 - 2 * _binomial_cdf(k - 1, n)
    return Interval(ordered[k - 1], ordered[n - k], coverage)


def ratio_interval(ours: Interval, base: Interval) -> Interval | None:
    """Every ratio the two intervals allow; None when the baseline's may be zero."""
    if base.low <= 0 or ours.low < 0:
        return None
    return Interval(ours.low / base.high, ours.high / base.low, ours.coverage * base.coverage)


def verdict(ours: Interval | None, base: Interval | None, better: str) -> str | None:
    """``faster``/``slower`` where the intervals do not overlap, else ``no difference``.

    ``better`` is ``lower`` (times) or ``higher`` (throughputs); None without two intervals.
    """
    if ours is None or base is None:
        return None
    if ours.overlaps(base):
        return SAME
    above = ours.low > base.high
    good = above if better == "higher" else not above
    return FASTER if good else SLOWER


def _inversions_distribution(n: int) -> list[int]:
    """How many permutations of ``n`` items have 0, 1, 2, ... inversions (Mahonian numbers)."""
    counts = [1]
    for size in range(2, n + 1):
        grown = [0] * (len(counts) + size - 1)
        for inversions, count in enumerate(counts):
            for extra in range(size):
                grown[inversions + extra] += count
        counts = grown
    return counts


def kendall_trend(samples: list[float]) -> tuple[float, float]:
    """Kendall's tau of the samples against their order, and its exact two-sided p-value."""
    n = len(samples)
    pairs = n * (n - 1) // 2
    if pairs == 0:
        return 0.0, 1.0
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            score += (samples[j] > samples[i]) - (samples[j] < samples[i])
    counts = _inversions_distribution(n)
    # score = pairs - 2 * inversions; at least as extreme means |score'| >= |score|
    extreme = sum(c for inv, c in enumerate(counts) if abs(pairs - 2 * inv) >= abs(score))
    return score / pairs, extreme / math.factorial(n)


def is_drifting(samples: list[float]) -> bool:
    """A trend across rounds: significant (exact Kendall test) and not negligible in size."""
    if len(samples) < 4:
        return False
    _, p = kendall_trend(samples)
    if p >= DRIFT_P:
        return False
    slopes = [
        (samples[j] - samples[i]) / (j - i)
        for i in range(len(samples))
        for j in range(i + 1, len(samples))
    ]
    change = abs(statistics.median(slopes)) * (len(samples) - 1)  # Theil-Sen, first to last
    middle = statistics.median(samples)
    return middle > 0 and change >= DRIFT_MIN_CHANGE * middle


def is_bimodal(samples: list[float]) -> bool:
    """Two groups of at least two samples each, far apart against their own spread."""
    ordered = sorted(samples)
    for cut in range(2, len(ordered) - 1):
        low, high = ordered[:cut], ordered[cut:]
        gap = high[0] - low[-1]
        spread = max(low[-1] - low[0], high[-1] - high[0])
        low_middle = statistics.median(low)
        if low_middle <= 0:
            continue
        far = statistics.median(high) / low_middle >= BIMODAL_RATIO
        if far and gap > BIMODAL_GAP * spread:
            return True
    return False


def flags(samples: list[float]) -> list[str]:
    """What the report should say about the shape of the samples, in a fixed order."""
    found = []
    if is_bimodal(samples):
        found.append(BIMODAL)
    if is_drifting(samples):
        found.append(DRIFT)
    return found


def summary(samples: list[float], base: list[float] | None, better: str) -> dict[str, object]:
    """The JSON figures of one cell: median, interval, ratio with interval, verdict, flags.

    ``base`` holds the baseline's samples for the same workload (None when it has none).
    """
    if not samples:
        return {"median": None, "ci": None, "ci_coverage": None, "ratio": None,
                "ratio_ci": None, "verdict": None, "flags": []}  # fmt: skip
    middle = statistics.median(samples)
    ours = median_interval(samples)
    result: dict[str, object] = {
        "median": round(middle, 6),
        "ci": None if ours is None else [round(ours.low, 6), round(ours.high, 6)],
        "ci_coverage": None if ours is None else round(ours.coverage, 4),
        "ratio": None,
        "ratio_ci": None,
        "verdict": None,
        "flags": flags(samples),
    }
    if base:
        base_middle = statistics.median(base)
        if base_middle:
            result["ratio"] = round(middle / base_middle, 4)
        theirs = median_interval(base)
        if ours is not None and theirs is not None:
            span = ratio_interval(ours, theirs)
            if span is not None:
                result["ratio_ci"] = [round(span.low, 4), round(span.high, 4)]
            result["verdict"] = verdict(ours, theirs, better)
    return result
