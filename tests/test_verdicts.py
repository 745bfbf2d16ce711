"""How a verdict reads: enough digits to tell the score from the band, and the reason in words."""

import pytest

from detector.verdicts import precise, read


def test_a_score_just_inside_the_band_reads_uncertain_with_enough_digits():
    # The case a user met: 0.9854 against a band edge of 0.9882 read "0.99 ... uncertain to 0.99".
    reading = read(0.9854, threshold=0.38, low=0.061, high=0.9882)
    assert reading.where == "uncertain" and reading.score == "0.985" and reading.high == "0.988"
    assert reading.score != reading.high
    assert "inside the uncertain band" in reading.sentence and "does not commit" in reading.sentence
    assert "0.985" in reading.sentence and "0.988" in reading.sentence


@pytest.mark.parametrize(
    ("p", "where", "words"),
    [(0.99, "fake", "calls it FAKE"), (0.01, "real", "calls it REAL"), (0.5, "uncertain", "does not commit")],
)
def test_each_side_of_the_band_says_why(p, where, words):
    reading = read(p, threshold=0.5, low=0.2, high=0.8)
    assert reading.where == where and words in reading.sentence
    assert reading.low_pct == 20 and reading.band_pct == 60 and reading.threshold_pct == 50


def test_precision_grows_only_as_needed():
    assert precise(0.42, [0.2, 0.8]) == 2
    assert precise(0.8041, [0.8049]) == 3 and precise(0.80412, [0.80418]) == 4
    assert precise(0.5, [0.5]) == 2  # equal values cannot be told apart: no digits are wasted
