"""The test's defaults, declared once; every function and option that takes them reads them here."""

DEFAULT_ALPHA = 0.05  # the test's level
DEFAULT_M = 40  # co-implementations per model: 2 / (m + 1) < alpha, so alpha is attainable
DEFAULT_N_BOOT = 1000  # bootstrap resamples of a group's confidence interval


def check_level(value: object, key: str = "alpha") -> None:
    """A test level (or any probability strictly between 0 and 1): one check, one message."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{key} must be in (0, 1), got {value!r}")
