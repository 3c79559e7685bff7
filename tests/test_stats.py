"""Statistics over seeds: the t quantile is exact for every df, checked against scipy."""

from __future__ import annotations

import math
import statistics

import pytest

from tocha.experiments.stats import incomplete_beta, spread, t_cdf, t_critical

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is a test dependency: pip install -e .[test]")


def test_t_critical_is_exact_for_every_df_up_to_1000():
    worst = max(abs(t_critical(df) - scipy_stats.t.ppf(0.975, df)) for df in range(1, 1001))
    assert worst < 1e-4


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.99, 0.999])
def test_t_critical_other_levels(confidence):
    for df in (1, 2, 3, 7, 30, 31, 100, 999):
        expected = scipy_stats.t.ppf((1 + confidence) / 2, df)
        assert t_critical(df, confidence) == pytest.approx(expected, abs=1e-4)


def test_t_cdf_and_incomplete_beta_against_scipy():
    from scipy.special import betainc

    for df in (1, 4, 33, 500):
        for t in (-5.0, -1.2, 0.0, 0.3, 2.5, 40.0):
            assert t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), abs=1e-10)
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 5.0, 0.9), (50.0, 0.5, 0.98), (0.5, 50.0, 0.01)]:
        assert incomplete_beta(a, b, x) == pytest.approx(betainc(a, b, x), abs=1e-12)


def test_an_interval_over_32_seeds_has_its_exact_width():
    values = [0.9 + 0.001 * ((7 * i) % 11) for i in range(32)]
    s = spread(values)
    half = scipy_stats.t.ppf(0.975, 31) * statistics.stdev(values) / math.sqrt(32)
    assert s.high - s.mean == pytest.approx(half, rel=1e-6)
    assert s.high - s.mean > 1.96 * statistics.stdev(values) / math.sqrt(32) * 1.03  # wider than normal


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        t_critical(0)
    with pytest.raises(ValueError):
        t_critical(5, 1.0)
