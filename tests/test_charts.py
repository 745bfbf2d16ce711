"""The result page's charts (SVG written directly) and the PDF's (matplotlib PNG): each point
where its value puts it, coloured by the threshold, described for screen readers."""

import xml.etree.ElementTree as ET

import pytest

from detector import charts
from detector.reports import figures
from ml.results import EMOTIONS

pytestmark = pytest.mark.engine  # no database: the first leg of CI runs it

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: bytes) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    return root


@pytest.mark.parametrize(
    ("low", "high", "most", "expected"),
    [
        (0, 1, 5, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 9.5, 8, [0, 2, 4, 6, 8]),
        (0, 37, 5, [0, 10, 20, 30]),
        (0, 3, 5, [0, 1, 2, 3]),
    ],
)
def test_ticks_are_round_numbers(low, high, most, expected):
    assert charts.ticks(low, high, most) == pytest.approx(expected)


def test_the_timeline_puts_each_scored_frame_at_its_time_and_score():
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    scores = [0.1, None, 0.9, 0.5, 0.3]
    root = parse(charts.timeline(times, scores, 0.5, (0.4, 0.6)))
    dots = root.findall("svg:circle", NS)
    assert [dot.find("svg:title", NS).text for dot in dots] == [
        "0.00 s: P(fake) 0.10",
        "2.00 s: P(fake) 0.90",
        "3.00 s: P(fake) 0.50",
        "4.00 s: P(fake) 0.30",
    ]
    assert [dot.get("class") for dot in dots] == ["real", "fake", "fake", "real"]  # at the threshold: fake
    xs = [float(dot.get("cx")) for dot in dots]
    ys = [float(dot.get("cy")) for dot in dots]
    assert xs == sorted(xs) and xs[1] - xs[0] == pytest.approx(2 * (xs[2] - xs[1]))
    assert ys[1] < ys[2] < ys[3] < ys[0]  # higher P(fake), higher on the chart
    threshold = root.find("svg:line[@class='threshold']", NS)
    assert float(threshold.get("y1")) == pytest.approx(ys[2])
    band = root.find("svg:rect[@class='band']", NS)
    assert float(band.get("y")) < ys[2] < float(band.get("y")) + float(band.get("height"))
    assert "threshold 0.50" in "".join(root.itertext())


def test_the_histogram_has_a_bar_per_occupied_bin_as_tall_as_its_count():
    root = parse(charts.histogram([0.01, 0.02, 0.03, 0.52, 0.97, 1.0], 0.5))
    bars = root.findall("svg:rect", NS)
    assert [bar.find("svg:title", NS).text for bar in bars] == [
        "P(fake) 0.00-0.05: 3 faces",
        "P(fake) 0.50-0.55: 1 face",
        "P(fake) 0.95-1.00: 2 faces",
    ]
    assert [bar.get("class") for bar in bars] == ["real", "fake", "fake"]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[0] == pytest.approx(3 * heights[1], rel=0.01) == pytest.approx(1.5 * heights[2], rel=0.01)


def test_the_expression_timeline_puts_each_face_on_its_expressions_row():
    def held(name, p):
        return {e: (p if e == name else (1 - p) / (len(EMOTIONS) - 1)) for e in EMOTIONS}

    emotions = [held("happy", 0.9), None, held("sad", 0.6), held("happy", 0.95)]
    change = {"from_timestamp_s": 0.0, "to_timestamp_s": 2.0, "from_emotion": "happy", "to_emotion": "sad"}
    root = parse(charts.emotion_timeline([0.0, 1.0, 2.0, 3.0], emotions, [change]))
    dots = root.findall("svg:circle", NS)
    assert [dot.find("svg:title", NS).text for dot in dots] == [
        "0.00 s: happy 90%",
        "2.00 s: sad 60%",
        "3.00 s: happy 95%",
    ]
    assert dots[0].get("cy") == dots[2].get("cy") != dots[1].get("cy")
    assert float(dots[0].get("fill-opacity")) > float(dots[1].get("fill-opacity"))
    (shade,) = root.findall("svg:rect[@class='change']", NS)
    assert float(shade.get("x")) == pytest.approx(float(dots[0].get("cx")))
    text = "".join(root.itertext())
    assert "1 abrupt change(s) shaded" in text and all(name in text for name in EMOTIONS)


def test_charts_of_nothing_are_still_charts():
    for svg in (
        charts.timeline([], [], 0.5, (0.4, 0.6)),
        charts.histogram([], 0.5),
        charts.emotion_timeline([0.0], [None], []),
    ):
        assert not parse(svg).findall("svg:circle", NS)


def test_the_reports_charts_are_pngs():
    png = figures.timeline([0.0, 1.0], [0.2, 0.8], 0.5, (0.4, 0.6))
    assert png.startswith(b"\x89PNG")
    assert figures.histogram([0.2, 0.8], 0.5).startswith(b"\x89PNG")
