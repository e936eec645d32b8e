import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score

from heldout.report.stats import (
    bootstrap_interval,
    calibration,
    clopper_pearson,
    compare_proportions,
    macro_f1,
)


@pytest.mark.parametrize(
    ("successes", "trials", "expected_low", "expected_high"),
    [
        # Closed forms at the edges: upper = 1 - (alpha/2)^(1/n) and lower = (alpha/2)^(1/n).
        (0, 10, 0.0, 1 - 0.025 ** (1 / 10)),
        (10, 10, 0.025 ** (1 / 10), 1.0),
        # Interior values, which solve the tail equations checked in the next test.
        (5, 10, 0.187086, 0.812914),
        (80, 100, 0.7081573, 0.8733444),
    ],
)
def test_clopper_pearson_known_values(successes, trials, expected_low, expected_high):
    low, high = clopper_pearson(successes, trials)
    assert low == pytest.approx(expected_low, abs=1e-6)
    assert high == pytest.approx(expected_high, abs=1e-6)


@pytest.mark.parametrize(("successes", "trials"), [(1, 7), (5, 10), (80, 100), (731, 750)])
def test_clopper_pearson_solves_tail_equations(successes, trials):
    low, high = clopper_pearson(successes, trials)
    # P(X >= k | p = low) = alpha / 2 and P(X <= k | p = high) = alpha / 2.
    assert stats.binom.sf(successes - 1, trials, low) == pytest.approx(0.025, abs=1e-9)
    assert stats.binom.cdf(successes, trials, high) == pytest.approx(0.025, abs=1e-9)


def test_clopper_pearson_no_trials_is_uninformative():
    assert clopper_pearson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("successes", "trials"), [(-1, 10), (11, 10), (0, -1)])
def test_clopper_pearson_rejects_invalid_counts(successes, trials):
    with pytest.raises(ValueError, match="Expected `(successes|trials)`"):
        clopper_pearson(successes, trials)


def test_clopper_pearson_interval_narrows_with_images():
    few = clopper_pearson(18, 20)
    many = clopper_pearson(1800, 2000)
    assert few[1] - few[0] > 0.2
    assert many[1] - many[0] < 0.03


def test_clopper_pearson_coverage_near_nominal():
    rng = np.random.default_rng(12345)
    true_accuracy, trials, draws = 0.8, 200, 500
    successes = rng.binomial(trials, true_accuracy, size=draws)
    covered = 0
    for count in successes:
        low, high = clopper_pearson(int(count), trials)
        covered += low <= true_accuracy <= high
    coverage = covered / draws
    assert 0.92 <= coverage <= 0.98


def test_bootstrap_interval_coverage_of_mean_near_nominal():
    rng = np.random.default_rng(7)
    draws, rows = 300, 400
    covered = 0
    for draw in range(draws):
        values = rng.exponential(1.0, size=rows)
        low, high = bootstrap_interval(rows, lambda index, v=values: v[index].mean(axis=1), 400, seed=draw)
        covered += low <= 1.0 <= high
    assert 0.90 <= covered / draws <= 0.98


def test_bootstrap_interval_is_reproducible_with_seed():
    values = np.random.default_rng(0).normal(size=300)
    first = bootstrap_interval(300, lambda index: values[index].mean(axis=1), 200, seed=4)
    second = bootstrap_interval(300, lambda index: values[index].mean(axis=1), 200, seed=4)
    assert first == second


def test_bootstrap_interval_chunks_large_tables(monkeypatch):
    monkeypatch.setattr("heldout.report.stats._MAX_BOOTSTRAP_INDICES", 1000)
    values = np.random.default_rng(0).normal(size=300)
    calls = []

    def statistic(index):
        calls.append(index.shape[0])
        return values[index].mean(axis=1)

    bootstrap_interval(300, statistic, 10, seed=0)
    assert calls == [3, 3, 3, 1]


def test_compare_proportions_matches_scipy_fisher():
    expected = stats.fisher_exact([[90, 10], [80, 20]]).pvalue
    assert compare_proportions(90, 100, 80, 100) == pytest.approx(expected)


def test_compare_proportions_equal_rates_not_significant():
    assert compare_proportions(80, 100, 80, 100) == pytest.approx(1.0)


def test_compare_proportions_empty_sample_gives_one():
    assert compare_proportions(5, 10, 0, 0) == 1.0


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 5, size=400)
    prediction = np.where(rng.random(400) < 0.7, target, rng.integers(0, 6, size=400))
    labels = np.unique(target)
    expected = f1_score(target, prediction, labels=labels, average="macro", zero_division=0)
    assert macro_f1(target, prediction, labels, num_classes=6) == pytest.approx(expected)


def test_calibration_of_perfect_confidence_is_zero():
    confidence = np.array([0.25] * 4 + [0.75] * 4)
    correct = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert calibration(confidence, correct, bins=10).ece == pytest.approx(0.0)


def test_calibration_overconfident_ece():
    confidence = np.full(10, 0.95)
    correct = np.array([1] * 7 + [0] * 3)
    result = calibration(confidence, correct, bins=15)
    assert result.ece == pytest.approx(0.25)
    assert result.counts.sum() == 10


def test_calibration_confidence_one_in_last_bin():
    result = calibration(np.array([1.0, 0.0]), np.array([1, 0]), bins=4)
    assert result.counts.tolist() == [1, 0, 0, 1]
