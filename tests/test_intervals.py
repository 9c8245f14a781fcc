import numpy as np

from lstm_worker.intervals import conformal_widths


def test_coverage_on_gaussian_noise_is_near_nominal():
    rng = np.random.default_rng(0)
    covered = {80: [], 95: []}
    for _ in range(400):  # 400 series: 4 backtest windows each, then a fresh 24-step future
        residuals = rng.normal(0, 2.0, size=(4, 24))
        widths = conformal_widths(residuals, [80, 95])
        future = rng.normal(0, 2.0, size=24)
        for level in covered:
            covered[level].append(np.abs(future) <= widths[level])
    for level, hits in covered.items():
        assert abs(100 * np.mean(hits) - level) < 3, (level, np.mean(hits))


def test_widths_grow_with_the_errors_of_later_steps():
    residuals = np.tile(np.arange(1.0, 49.0), (3, 1))  # errors grow with the step
    widths = conformal_widths(residuals, [90])[90]
    assert widths[0] < widths[24] < widths[47]


def test_undefined_without_residuals():
    widths = conformal_widths(np.full((2, 5), np.nan), [80])[80]
    assert np.isnan(widths).all()
