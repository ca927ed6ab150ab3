"""Confidence intervals shared by every command: proportions, their differences, and means.

All rates are fractions in [0, 1]; `z` is the normal quantile (1.96 for 95%).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (Wilson 1927); (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"expected 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # k = 0 and k = n give exactly 0 and 1 in exact arithmetic; do not leave float noise there.
    lower = 0.0 if k == 0 else max(0.0, centre - half)
    upper = 1.0 if k == n else min(1.0, centre + half)
    return (lower, upper)


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Interval for the difference p2 - p1 of two independent proportions.

    Newcombe's hybrid score method (method 10 in Newcombe, Statistics in Medicine 1998), built
    from the two Wilson intervals; it keeps good coverage for small counts and rates near 0.
    """
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (lower, upper)


def mean_interval(mean: float, sd: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Normal-approximation interval for a mean of n values with sample standard deviation sd."""
    if n <= 1:
        return (-math.inf, math.inf)
    half = z * sd / math.sqrt(n)
    return (mean - half, mean + half)


def mean_difference_interval(
    mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int, z: float = Z95
) -> tuple[float, float]:
    """Welch-style normal interval for mean2 - mean1 of two independent samples."""
    if n1 <= 1 or n2 <= 1:
        return (-math.inf, math.inf)
    half = z * math.sqrt(sd1**2 / n1 + sd2**2 / n2)
    d = mean2 - mean1
    return (d - half, d + half)


def detectable_difference(n: int, rate: float = 0.5, z: float = Z95) -> float:
    """Smallest difference in a rate that a split of n items tells apart from zero at 95%.

    Half-width of the normal interval for a difference between two splits of n items each at
    `rate`: z * sqrt(2 p (1 - p) / n). With n = 300 and p = 0.1 that is about 4.8 points.
    """
    if n <= 0:
        return 1.0
    p = min(max(rate, 1.0 / n), 1 - 1.0 / n) if n > 1 else 0.5
    return z * math.sqrt(2 * p * (1 - p) / n)


def mcnemar_one_sided(b: int, c: int) -> float:
    """One-sided exact McNemar p-value that the first of two classifiers scored on the same items is
    better: b items only it gets right, c items only the other gets right. Under the null each
    discordant item is a fair coin, so p = P(X >= b) for X ~ Binomial(b + c, 1/2) (McNemar 1947;
    the exact form of Fagerland, Lydersen and Laake, BMC Medical Research Methodology 2013).
    1.0 when there is no discordant item."""
    if b < 0 or c < 0:
        raise ValueError(f"expected counts >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0 or b == 0:
        return 1.0
    log_half = n * math.log(0.5)

    def log_pmf(k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half

    # Sum the tail whose terms fall away from the mode, stopping once they stop counting.
    upper = 2 * b > n
    first, step, stop = (b, 1, n + 1) if upper else (b - 1, -1, -1)
    total = 0.0
    k = first
    while k != stop:
        term = math.exp(log_pmf(k))
        total += term
        if term < total * 1e-17:
            break
        k += step
    return min(1.0, total) if upper else max(0.0, 1.0 - total)
