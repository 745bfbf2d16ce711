"""Downloadable reports of an analysis: JSON (everything), CSV (per frame, per face), PDF."""

import csv
import io
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from detector.models import Analysis

METHOD_TEXT = (
    "Frames are sampled evenly over the whole video. Every face is found with MTCNN and "
    "cropped with a margin; a convolutional network scores each crop for signs of "
    "manipulation, and for videos a sequence model (LSTM) reads the frames of each person in "
    "order. The verdict comes from the most suspicious person whose face is large and steady "
    "enough to judge. Heatmaps (Grad-CAM) show where the network's evidence lies in a face."
)
LIMITS_TEXT = (
    "The score is a model's estimate, not proof. Models miss manipulation methods unlike those "
    "they were trained on, heavy compression and small faces lower their accuracy, and real "
    "media can score high. Heatmaps show model attention, not the location of a manipulation. "
    "Treat a FAKE verdict as a reason to look closer and an UNCERTAIN one as no answer; "
    "confirm with other evidence (source, context, metadata, other tools) before acting."
)


def summary(analysis: Analysis) -> dict:
    upload = analysis.upload
    return {
        "id": str(analysis.pk),
        "file": {
            "name": upload.original_name,
            "media_type": upload.media_type,
            "size_bytes": upload.size,
            "sha256": upload.sha256,
            "width": upload.width,
            "height": upload.height,
            "duration_s": upload.duration_s,
            "fps": upload.fps,
            "frame_count": upload.frame_count,
            "uploaded_at": upload.created_at.isoformat(),
        },
        "settings": {
            "frames_requested": analysis.frames_requested,
            "model_requested": analysis.model_requested or None,
        },
        "status": analysis.status,
        "failure_reason": analysis.failure_reason or None,
        "failure_message": analysis.failure_message or None,
        "model": analysis.model_name or None,
        "model_version": analysis.model_version or None,
        "verdict": analysis.verdict or None,
        "fake_probability": analysis.fake_probability,
        "confidence": analysis.confidence,
        "threshold": analysis.threshold,
        "uncertain_band": [analysis.uncertain_low, analysis.uncertain_high],
        "frames_analyzed": analysis.frames_analyzed,
        "faces_detected": analysis.faces_detected,
        "aggregates": analysis.aggregates,
        "timings": analysis.timings,
        "created_at": analysis.created_at.isoformat(),
        "started_at": analysis.started_at.isoformat() if analysis.started_at else None,
        "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
    }


def as_json(analysis: Analysis) -> dict:
    data = summary(analysis)
    data["people"] = [
        {
            "track_id": t.track_id,
            "faces": t.faces,
            "fake_probability": t.fake_probability,
            "mean_probability": t.mean_probability,
            "max_probability": t.max_probability,
            "median_face_size": t.median_face_size,
            "verdict": t.verdict,
            "counted_in_verdict": t.counted,
        }
        for t in analysis.tracks.all()
    ]
    data["frames"] = [
        {
            "index": frame.index,
            "timestamp_s": frame.timestamp_s,
            "fake_probability": frame.fake_probability,
            "faces": [
                {
                    "track_id": face.track_id,
                    "box": face.box,
                    "landmarks": face.landmarks,
                    "detector_confidence": face.detector_confidence,
                    "interpolated": face.interpolated,
                    "fake_probability": face.fake_probability,
                }
                for face in frame.faces.all()
            ],
        }
        for frame in analysis.frames.prefetch_related("faces")
    ]
    data["method"] = METHOD_TEXT
    data["limitations"] = LIMITS_TEXT
    data["generated_at"] = timezone.now().isoformat()
    return data


CSV_COLUMNS = [
    "frame_index",
    "timestamp_s",
    "track_id",
    "fake_probability",
    "detector_confidence",
    "interpolated",
    "box_x1",
    "box_y1",
    "box_x2",
    "box_y2",
]


def as_csv(analysis: Analysis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for face in analysis.faces.select_related("frame").order_by("frame__index", "track_id"):
        writer.writerow(
            [
                face.frame.index,
                f"{face.frame.timestamp_s:.3f}",
                face.track_id,
                f"{face.fake_probability:.4f}",
                f"{face.detector_confidence:.4f}",
                int(face.interpolated),
                *face.box,
            ]
        )
    return buffer.getvalue()


def as_pdf(analysis: Analysis) -> bytes:
    """A report a person can file: verdict, file facts, method, charts and evidence."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from detector import charts

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    data = summary(analysis)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Deepfake analysis of {data['file']['name']}",
    )
    width = A4[0] - 32 * mm
    story = [Paragraph("Deepfake forensics report", styles["Title"])]
    verdict = (analysis.verdict or analysis.status).replace("_", " ").upper()
    colour = {"FAKE": colors.HexColor("#c62828"), "REAL": colors.HexColor("#2e7d32")}.get(
        verdict, colors.HexColor("#b26a00")
    )
    verdict_style = styles["Heading1"].clone("verdict", textColor=colour)
    story.append(Paragraph(f"Verdict: {verdict}", verdict_style))
    if analysis.fake_probability is not None:
        story.append(
            Paragraph(
                f"P(fake) {analysis.fake_probability:.1%} · confidence {analysis.confidence:.0%} · "
                f"threshold {analysis.threshold:.2f} (uncertain between {analysis.uncertain_low:.2f} and "
                f"{analysis.uncertain_high:.2f})",
                styles["BodyText"],
            )
        )
    if analysis.failure_message:
        story.append(Paragraph(analysis.failure_message, styles["BodyText"]))
    f = data["file"]
    facts = [
        ["File", f["name"]],
        ["SHA-256", Paragraph(f["sha256"], small)],
        ["Type, size", f"{f['media_type']}, {f['size_bytes']:,} bytes"],
        ["Resolution", f"{f['width']}x{f['height']}" if f["width"] else "–"],
        ["Duration", f"{f['duration_s']:.1f} s at {f['fps']:.2f} fps" if f["duration_s"] else "–"],
        ["Model", f"{analysis.model_name or '–'} ({analysis.model_version or '–'})"],
        ["Settings", f"{analysis.frames_requested} frames requested, {analysis.frames_analyzed} analysed"],
        ["Faces", f"{analysis.faces_detected} detected"],
        ["Analysed", f"{data['finished_at'] or '–'}"],
        ["Report generated", timezone.now().isoformat(timespec="seconds")],
    ]
    story.append(Spacer(1, 4 * mm))
    story.append(_table(facts, [32 * mm, width - 32 * mm], TableStyle, colors))

    frames = list(analysis.frames.prefetch_related("faces"))
    counted = set(analysis.tracks.filter(counted=True).values_list("track_id", flat=True))
    faces = sorted(
        analysis.faces.select_related("frame"),
        key=lambda face: (face.track_id not in counted, -face.fake_probability),
    )
    if faces:
        story.append(Paragraph("Scores", styles["Heading2"]))
        if analysis.upload.media_type == "video":
            png = charts.timeline(
                [fr.timestamp_s for fr in frames],
                [fr.fake_probability for fr in frames],
                analysis.threshold,
                (analysis.uncertain_low, analysis.uncertain_high),
                fmt="png",
            )
            story.append(Image(io.BytesIO(png), width=width, height=width * 2.4 / 7.5))
        png = charts.histogram([face.fake_probability for face in faces], analysis.threshold, fmt="png")
        story.append(Image(io.BytesIO(png), width=width * 0.5, height=width * 0.5 * 2.4 / 3.8))

    thumbs = [fr for fr in frames if fr.thumbnail][:8]
    if thumbs:
        story.append(Paragraph("Frames", styles["Heading2"]))
        cells = []
        for frame in thumbs:
            image = _image(frame.thumbnail.name, width / 4 - 2 * mm, Image)
            label = "no face" if frame.fake_probability is None else f"{frame.fake_probability:.0%}"
            cells.append([image, Paragraph(f"{frame.timestamp_s:.1f} s · {label}", small)])
        rows = [[c[0] for c in cells[i : i + 4]] for i in range(0, len(cells), 4)]
        labels = [[c[1] for c in cells[i : i + 4]] for i in range(0, len(cells), 4)]
        grid = [row for pair in zip(rows, labels, strict=True) for row in pair]
        story.append(Table(grid, colWidths=[width / 4] * 4))

    if faces:
        story.append(Paragraph("Most suspicious faces (crop and heatmap)", styles["Heading2"]))
        cells = []
        for face in faces[:6]:
            crop = _image(face.crop.name, 28 * mm, Image)
            heat = _image(face.heatmap.name, 28 * mm, Image)
            caption = Paragraph(
                f"{face.fake_probability:.0%} · frame {face.frame.index} "
                f"({face.frame.timestamp_s:.1f} s) · person {face.track_id}",
                small,
            )
            cells.append([crop, heat, caption])
        story.append(Table(cells, colWidths=[31 * mm, 31 * mm, width - 62 * mm]))
        story.append(
            Paragraph("Heatmaps show where the model's evidence lies: model attention, not proof.", small)
        )

    story.append(Paragraph("Method", styles["Heading2"]))
    story.append(Paragraph(METHOD_TEXT, styles["BodyText"]))
    story.append(Paragraph("What the score means and does not mean", styles["Heading2"]))
    story.append(Paragraph(LIMITS_TEXT, styles["BodyText"]))

    if frames:
        story.append(PageBreak())
        story.append(Paragraph("Per-frame scores", styles["Heading2"]))
        rows = [["Frame", "Time (s)", "Person", "P(fake)", "Detector conf.", "Box (x1, y1, x2, y2)"]]
        for frame in frames:
            if not frame.faces.all():
                rows.append([frame.index, f"{frame.timestamp_s:.2f}", "–", "no face", "", ""])
            for face in frame.faces.all():
                box = ", ".join(f"{v:.0f}" for v in face.box)
                rows.append(
                    [
                        frame.index,
                        f"{frame.timestamp_s:.2f}",
                        face.track_id,
                        f"{face.fake_probability:.3f}",
                        f"{face.detector_confidence:.3f}",
                        box,
                    ]
                )
        story.append(_table(rows, None, TableStyle, colors, header=True, font_size=7))

    doc.build(story)
    return buffer.getvalue()


def _image(relative: str, size: float, image_class):
    path = Path(settings.MEDIA_ROOT) / relative
    if not relative or not path.is_file():
        return ""
    from PIL import Image as PILImage

    with PILImage.open(path) as pil:
        ratio = pil.height / pil.width
    return image_class(str(path), width=size, height=size * ratio)


def _table(rows, widths, table_style, colors, header: bool = False, font_size: int = 8):
    from reportlab.platypus import Table

    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONTSIZE", (0, 0), (-1, -1), font_size),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#dddddd")),
    ]
    if header:
        style += [
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ]
    else:
        style += [("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold")]
    table.setStyle(table_style(style))
    return table
