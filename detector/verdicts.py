"""How a verdict reads: the score against the threshold and the uncertain band, in words and
numbers precise enough to tell them apart. The result page, the PDF and the API docs say the
same thing, from here."""

from dataclasses import dataclass


def precise(value: float, others: list[float], least: int = 2, most: int = 4) -> int:
    """The fewest decimals (least..most) at which `value` reads differently from each of `others`
    (0.9854 and a band edge of 0.9882 both read 0.99 at two decimals, so three are used)."""
    for digits in range(least, most + 1):
        if all(f"{value:.{digits}f}" != f"{other:.{digits}f}" for other in others if other != value):
            return digits
    return most


@dataclass(frozen=True)
class Reading:
    score: str  # P(fake), e.g. "0.985"
    low: str
    high: str
    threshold: str
    where: str  # "fake", "uncertain" or "real": the side of the band the score falls on
    sentence: str  # the reason for the verdict, in one sentence
    score_pct: float  # positions on a 0-100 scale, for the drawn scale
    low_pct: float
    high_pct: float
    threshold_pct: float

    @property
    def band_pct(self) -> float:
        return round(self.high_pct - self.low_pct, 2)


def read(probability: float, threshold: float, low: float, high: float) -> Reading:
    """The reading of a score. FAKE at or above `high`, REAL below `low`, UNCERTAIN between."""
    digits = precise(probability, [low, high, threshold])
    edge_digits = max(precise(low, [high, threshold]), precise(high, [low, threshold]), digits)

    def fmt(value: float, places: int) -> str:
        return f"{value:.{places}f}"

    score, lo, hi, th = fmt(probability, digits), fmt(low, edge_digits), fmt(high, edge_digits), fmt(threshold, 2)
    if probability >= high:
        where = "fake"
        sentence = f"P(fake) {score} is at or above the band's upper edge {hi}: the model calls it FAKE."
    elif probability < low:
        where = "real"
        sentence = f"P(fake) {score} is below the band's lower edge {lo}: the model calls it REAL."
    else:
        where = "uncertain"
        sentence = (
            f"P(fake) {score} lies inside the uncertain band, {lo} to {hi}: the model does not commit "
            f"(at or above {hi} it would say FAKE, below {lo} REAL)."
        )
    return Reading(
        score=score,
        low=lo,
        high=hi,
        threshold=th,
        where=where,
        sentence=sentence,
        score_pct=round(100 * probability, 2),
        low_pct=round(100 * low, 2),
        high_pct=round(100 * high, 2),
        threshold_pct=round(100 * threshold, 2),
    )


def reading_of(analysis) -> Reading | None:
    """The reading of a finished analysis's verdict (an Analysis row), or None without a score."""
    if analysis.fake_probability is None or analysis.threshold is None:
        return None
    return read(analysis.fake_probability, analysis.threshold, analysis.uncertain_low, analysis.uncertain_high)


# The API's field descriptions (drf-spectacular puts them in the OpenAPI schema).
FIELD_HELP = {
    "fake_probability": "P(fake) of the face that decides, 0-1 (calibrated on validation data).",
    "confidence": (
        "How far P(fake) lies from the threshold towards its side, 0-1. Meaningful only for FAKE and "
        "REAL verdicts; inside the uncertain band it says nothing about certainty."
    ),
    "threshold": "The score at which the model is as likely wrong either way (chosen on validation data).",
    "uncertain_low": "Below this P(fake) the verdict is REAL.",
    "uncertain_high": "At or above this P(fake) the verdict is FAKE; between the two, UNCERTAIN.",
}
