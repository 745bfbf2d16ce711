"""Downloadable reports of an analysis: JSON (everything), CSV (per frame, per face), PDF."""

import io
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone

from detector import charts
from detector.catalog import accuracy_sentence, measured_accuracy
from detector.csvfiles import SafeWriter
from detector.models import Analysis
from detector.verdicts import read as read_verdict
from ml.results import EMOTIONS, speaking_face

METHOD_TEXT = (
    "Frames are sampled evenly over the whole video. Every face is found with MTCNN and "
    "cropped with a margin; a convolutional network scores each crop for signs of "
    "manipulation. For videos, each person's score comes from a sequence model (LSTM) over "
    "their frames in order, or from the mean of their frame scores when validation favoured "
    "that for the model (the report's aggregates say which). The verdict comes from the most "
    "suspicious person whose face is large and steady enough to judge. Heatmaps (Grad-CAM) "
    "show where the network's evidence lies in a face."
)
LIMITS_TEXT = (
    "The score is a model's estimate, not proof. Models miss manipulation methods unlike those "
    "they were trained on, heavy compression and small faces lower their accuracy, and real "
    "media can score high. Heatmaps show model attention, not the location of a manipulation. "
    "Treat a FAKE verdict as a reason to look closer and an UNCERTAIN one as no answer; "
    "confirm with other evidence (source, context, metadata, other tools) before acting."
)


@dataclass
class FaceRow:
    frame_index: int
    timestamp_s: float
    track_id: int
    box: list[float]
    landmarks: list
    detector_confidence: float
    interpolated: bool
    fake_probability: float
    crop: Path | None = None
    heatmap: Path | None = None
    emotion: str = ""
    emotions: dict[str, float] = field(default_factory=dict)


@dataclass
class FrameRow:
    index: int
    timestamp_s: float
    fake_probability: float | None
    thumbnail: Path | None = None
    faces: list[FaceRow] = field(default_factory=list)
    emotion: str = ""  # of the face behind fake_probability


@dataclass
class ReportData:
    """Everything a report shows, from stored rows or straight from an engine result."""

    summary: dict
    people: list[dict]
    frames: list[FrameRow]
    reviews: list[dict] = field(default_factory=list)

    def frame_face(self, frame: FrameRow) -> FaceRow | None:
        """The face behind a frame's score and expression (the rule of `ml.results`)."""
        return speaking_face(frame.faces, {p["track_id"] for p in self.people if p["counted_in_verdict"]})

    def faces_by_suspicion(self) -> list[FaceRow]:
        """Faces of counted people first, then by score."""
        counted = {p["track_id"] for p in self.people if p["counted_in_verdict"]}
        faces = [face for frame in self.frames for face in frame.faces]
        return sorted(faces, key=lambda face: (face.track_id not in counted, -face.fake_probability))


EMOTION_NOTE = (
    "Expressions are recognised per face by a separate model (mini-Xception, FER2013 classes). "
    "An abrupt change between frames a fraction of a second apart is a weak manipulation cue; "
    "speech, blinks and compression cause them too. Expressions never change the verdict."
)


def _person(track_id, faces, fake_probability, mean_probability, max_probability, median_face_size, verdict, counted):
    """One person of a report, from a `Track` row or an engine `TrackResult` (same fields)."""
    return {
        "track_id": track_id,
        "faces": faces,
        "fake_probability": fake_probability,
        "mean_probability": mean_probability,
        "max_probability": max_probability,
        "median_face_size": median_face_size,
        "verdict": verdict,
        "counted_in_verdict": counted,
    }


def _people(tracks) -> list[dict]:
    return [
        _person(
            t.track_id,
            t.faces,
            t.fake_probability,
            t.mean_probability,
            t.max_probability,
            t.median_face_size,
            t.verdict,
            t.counted,
        )
        for t in tracks
    ]


def _media(relative: str) -> Path | None:
    return Path(settings.MEDIA_ROOT) / relative if relative else None


def from_analysis(analysis: Analysis) -> ReportData:
    upload = analysis.upload
    summary = {
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
        "model_accuracy": measured_accuracy(analysis.model_name, analysis.model_version),
        "verdict": analysis.verdict or None,
        "fake_probability": analysis.fake_probability,
        "confidence": analysis.confidence,
        "threshold": analysis.threshold,
        "uncertain_band": [analysis.uncertain_low, analysis.uncertain_high],
        "frames_analyzed": analysis.frames_analyzed,
        "faces_detected": analysis.faces_detected,
        "aggregates": analysis.aggregates,
        "emotions": analysis.emotions,
        "emotion_changes": analysis.emotion_changes,
        "timings": analysis.timings,
        "review_decision": analysis.review_decision or None,
        "created_at": analysis.created_at.isoformat(),
        "started_at": analysis.started_at.isoformat() if analysis.started_at else None,
        "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
    }
    people = _people(analysis.tracks.all())
    frames = [
        FrameRow(
            index=frame.index,
            timestamp_s=frame.timestamp_s,
            fake_probability=frame.fake_probability,
            thumbnail=_media(frame.thumbnail.name),
            faces=[
                FaceRow(
                    frame_index=frame.index,
                    timestamp_s=frame.timestamp_s,
                    track_id=face.track_id,
                    box=face.box,
                    landmarks=face.landmarks,
                    detector_confidence=face.detector_confidence,
                    interpolated=face.interpolated,
                    fake_probability=face.fake_probability,
                    crop=_media(face.crop.name),
                    heatmap=_media(face.heatmap.name),
                    emotion=face.emotion,
                    emotions=face.emotions,
                )
                for face in frame.faces.all()
            ],
            emotion=frame.emotion,
        )
        for frame in analysis.frames.prefetch_related("faces")
    ]
    reviews = [
        {
            "decision": review.decision,
            "notes": review.notes,
            "reviewer": review.reviewer.get_username(),
            "created_at": review.created_at.isoformat(),
            "agrees_with_model": review.agrees,
        }
        for review in analysis.reviews.select_related("reviewer").order_by("created_at")
    ]
    return ReportData(summary=summary, people=people, frames=frames, reviews=reviews)


def from_result(result, path: Path, image_dir: Path | None = None) -> ReportData:
    """Report data straight from an engine result (the command line, no database).

    With `image_dir`, thumbnails, crops and heatmaps are written there for the PDF.
    """
    import hashlib

    from PIL import Image

    def save(pixels, name: str) -> Path | None:
        if image_dir is None or pixels is None:
            return None
        target = image_dir / name
        Image.fromarray(pixels).save(target, quality=85)
        return target

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    data = result.to_dict()
    summary = {
        "id": None,
        "file": {
            "name": path.name,
            "media_type": result.media_type,
            "size_bytes": path.stat().st_size,
            "sha256": digest.hexdigest(),
            "width": result.width,
            "height": result.height,
            "duration_s": result.duration_s or None,
            "fps": result.fps or None,
            "frame_count": result.frame_count,
            "uploaded_at": None,
        },
        "settings": {"frames_requested": result.frames_requested, "model_requested": None},
        "status": "failed" if result.verdict == "no_face" else "done",
        "failure_reason": "no_face" if result.verdict == "no_face" else None,
        "failure_message": "No face was found." if result.verdict == "no_face" else None,
        "model": result.model_name,
        "model_version": result.model_version,
        "model_accuracy": measured_accuracy(result.model_name, result.model_version),
        "verdict": result.verdict,
        "fake_probability": result.fake_probability,
        "confidence": result.confidence,
        "threshold": result.threshold,
        "uncertain_band": [result.uncertain_low, result.uncertain_high],
        "frames_analyzed": result.frames_analyzed,
        "faces_detected": result.faces_detected,
        "aggregates": data["aggregates"] or {},
        "emotions": data["emotions"],
        "emotion_changes": data["emotion_changes"],
        "timings": data["timings"],
        "review_decision": None,
        "created_at": None,
        "started_at": None,
        "finished_at": timezone.now().isoformat(),
    }
    people = _people(result.tracks)
    frames = []
    for frame in result.frames:
        faces = [
            FaceRow(
                frame_index=frame.index,
                timestamp_s=frame.timestamp_s,
                track_id=face.track_id,
                box=[round(v, 1) for v in face.box],
                landmarks=[[round(x, 1), round(y, 1)] for x, y in face.landmarks],
                detector_confidence=face.detector_confidence,
                interpolated=face.interpolated,
                fake_probability=face.fake_probability,
                crop=save(face.crop, f"face_{frame.index}_{k}_crop.jpg"),
                heatmap=save(face.overlay, f"face_{frame.index}_{k}_cam.jpg"),
                emotion=face.emotion or "",
                emotions={k: round(v, 4) for k, v in (face.emotions or {}).items()},
            )
            for k, face in enumerate(frame.faces)
        ]
        frames.append(
            FrameRow(
                index=frame.index,
                timestamp_s=frame.timestamp_s,
                fake_probability=speaker.fake_probability if (speaker := result.frame_face(frame)) else None,
                thumbnail=save(frame.thumbnail, f"frame_{frame.index}.jpg"),
                faces=faces,
                emotion=(speaker.emotion or "") if speaker else "",
            )
        )
    return ReportData(summary=summary, people=people, frames=frames)


def as_json(data: ReportData) -> dict:
    report = dict(data.summary)
    report["people"] = data.people
    report["frames"] = [
        {
            "index": frame.index,
            "timestamp_s": frame.timestamp_s,
            "fake_probability": frame.fake_probability,
            "emotion": frame.emotion or None,
            "faces": [
                {
                    "track_id": face.track_id,
                    "box": face.box,
                    "landmarks": face.landmarks,
                    "detector_confidence": face.detector_confidence,
                    "interpolated": face.interpolated,
                    "fake_probability": face.fake_probability,
                    "emotion": face.emotion or None,
                    "emotions": face.emotions or None,
                }
                for face in frame.faces
            ],
        }
        for frame in data.frames
    ]
    report["reviews"] = data.reviews
    report["method"] = METHOD_TEXT
    report["limitations"] = LIMITS_TEXT
    report["generated_at"] = timezone.now().isoformat()
    return report


# Each row starts with what the file is and what was concluded, so that a CSV that travels
# alone still says which file, which verdict and which model it belongs to.
CSV_CASE_COLUMNS = ["file", "sha256", "verdict", "model", "model_version"]
CSV_COLUMNS = [
    *CSV_CASE_COLUMNS,
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
    "emotion",
    *(f"p_{name}" for name in EMOTIONS),
]


def as_csv(data: ReportData) -> str:
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_COLUMNS)
    s = data.summary
    case = [
        s["file"]["name"],
        s["file"]["sha256"],
        s["verdict"] or s["status"],
        s["model"] or "",
        s["model_version"] or "",
    ]
    for frame in data.frames:
        for face in sorted(frame.faces, key=lambda f: f.track_id):
            writer.writerow(
                [
                    *case,
                    frame.index,
                    f"{frame.timestamp_s:.3f}",
                    face.track_id,
                    f"{face.fake_probability:.4f}",
                    f"{face.detector_confidence:.4f}",
                    int(face.interpolated),
                    *face.box,
                    face.emotion,
                    *(f"{face.emotions[name]:.4f}" if face.emotions else "" for name in EMOTIONS),
                ]
            )
    return buffer.getvalue()


def as_pdf(data: ReportData) -> bytes:
    """A report a person can file: verdict, file facts, method, charts and evidence."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    s = data.summary
    f = s["file"]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Deepfake analysis of {f['name']}",
    )
    width = A4[0] - 32 * mm
    story = [Paragraph("Deepfake forensics report", styles["Title"])]
    verdict = (s["verdict"] or s["status"]).replace("_", " ").upper()
    colour = {"FAKE": "#c62828", "REAL": "#2e7d32"}.get(verdict, "#b26a00")
    story.append(
        Paragraph(f"Verdict: {verdict}", styles["Heading1"].clone("verdict", textColor=colors.HexColor(colour)))
    )
    threshold = s["threshold"]
    low, high = s["uncertain_band"]
    if s["fake_probability"] is not None:
        # The same reading as the result page: the score against the band, in enough digits.
        story.append(Paragraph(read_verdict(s["fake_probability"], threshold, low, high).sentence, styles["BodyText"]))
    if s["failure_message"]:
        story.append(Paragraph(escape(s["failure_message"]), styles["BodyText"]))
    facts = [
        ["File", Paragraph(escape(f["name"]), small)],
        ["SHA-256", Paragraph(f["sha256"], small)],
        ["Type, size", f"{f['media_type']}, {f['size_bytes']:,} bytes"],
        ["Resolution", f"{f['width']}x{f['height']}" if f["width"] else "–"],
        ["Duration", f"{f['duration_s']:.1f} s at {f['fps']:.2f} fps" if f["duration_s"] else "–"],
        ["Model", f"{s['model'] or '–'} ({s['model_version'] or '–'})"],
        ["Model accuracy", Paragraph(escape(accuracy_sentence(s.get("model_accuracy") or {})), small)],
        [
            "Settings",
            f"{s['settings']['frames_requested']} frames requested, {s['frames_analyzed']} analysed"
            if f["media_type"] == "video"
            else "the photo, analysed whole",
        ],
        ["Faces", f"{s['faces_detected']} detected"],
        ["Analysed", s["finished_at"] or "–"],
        ["Report generated", timezone.now().isoformat(timespec="seconds")],
    ]
    if data.reviews:
        last = data.reviews[-1]
        facts.append(
            [
                "Review",
                f"{last['decision'].replace('_', ' ')} by {last['reviewer']} ({last['created_at'][:16]})",
            ]
        )
    story.append(Spacer(1, 4 * mm))
    story.append(_table(facts, [32 * mm, width - 32 * mm], TableStyle, colors))

    faces = data.faces_by_suspicion()
    if faces:
        story.append(Paragraph("Scores", styles["Heading2"]))
        if f["media_type"] == "video":
            png = charts.timeline(
                [fr.timestamp_s for fr in data.frames],
                [fr.fake_probability for fr in data.frames],
                threshold,
                (low, high),
                fmt="png",
            )
            story.append(Image(io.BytesIO(png), width=width, height=width * 2.4 / 7.5))
        png = charts.histogram([face.fake_probability for face in faces], threshold, fmt="png")
        story.append(Image(io.BytesIO(png), width=width * 0.5, height=width * 0.5 * 2.4 / 3.8))

    if s.get("emotions"):
        story.append(Paragraph("Facial expressions", styles["Heading2"]))
        mix = sorted(s["emotions"].items(), key=lambda item: -item[1])
        where = "over the video" if f["media_type"] == "video" else "in the photo"
        story.append(Paragraph(f"Mix {where}: " + ", ".join(f"{k} {v:.0%}" for k, v in mix), small))
        if f["media_type"] == "video":
            png = charts.emotion_timeline(
                [fr.timestamp_s for fr in data.frames],
                [(face.emotions or None) if (face := data.frame_face(fr)) else None for fr in data.frames],
                s["emotion_changes"],
                fmt="png",
            )
            story.append(Image(io.BytesIO(png), width=width, height=width * 2.2 / 7.5))
        changes = s["emotion_changes"]
        story.append(
            Paragraph(
                f"Abrupt changes: {len(changes)}"
                + (
                    " ("
                    + "; ".join(
                        f"{c['from_emotion']} to {c['to_emotion']} at {c['to_timestamp_s']:.1f} s" for c in changes[:8]
                    )
                    + ")"
                    if changes
                    else ""
                )
                + ". "
                + EMOTION_NOTE,
                small,
            )
        )

    thumbs = [fr for fr in data.frames if fr.thumbnail][:8]
    if thumbs:
        story.append(Paragraph("Frames", styles["Heading2"]))
        cells = []
        for frame in thumbs:
            label = "no face" if frame.fake_probability is None else f"{frame.fake_probability:.0%}"
            cells.append(
                (
                    _image(frame.thumbnail, width / 4 - 2 * mm, Image),
                    Paragraph(
                        f"{frame.timestamp_s:.1f} s · {label}" + (f" · {frame.emotion}" if frame.emotion else ""), small
                    ),
                )
            )
        grid = []
        for i in range(0, len(cells), 4):
            grid.append([c[0] for c in cells[i : i + 4]])
            grid.append([c[1] for c in cells[i : i + 4]])
        story.append(Table(grid, colWidths=[width / 4] * 4))

    if faces:
        story.append(Paragraph("Most suspicious faces (crop and heatmap)", styles["Heading2"]))
        rows = []
        for face in faces[:6]:
            caption = Paragraph(
                f"{face.fake_probability:.0%} · frame {face.frame_index} "
                f"({face.timestamp_s:.1f} s) · person {face.track_id}" + (f" · {face.emotion}" if face.emotion else ""),
                small,
            )
            rows.append([_image(face.crop, 28 * mm, Image), _image(face.heatmap, 28 * mm, Image), caption])
        story.append(Table(rows, colWidths=[31 * mm, 31 * mm, width - 62 * mm]))
        story.append(Paragraph("Heatmaps show where the model's evidence lies: model attention, not proof.", small))

    if data.reviews:
        story.append(Paragraph("Reviews", styles["Heading2"]))
        rows = [["When", "Reviewer", "Decision", "Notes"]]
        for review in data.reviews:
            rows.append(
                [
                    review["created_at"][:16],
                    review["reviewer"],
                    review["decision"].replace("_", " "),
                    Paragraph(escape(review["notes"]), small),
                ]
            )
        story.append(_table(rows, [30 * mm, 28 * mm, 30 * mm, width - 88 * mm], TableStyle, colors, header=True))

    story.append(Paragraph("Method", styles["Heading2"]))
    story.append(Paragraph(METHOD_TEXT, styles["BodyText"]))
    story.append(Paragraph("What the score means and does not mean", styles["Heading2"]))
    story.append(Paragraph(LIMITS_TEXT, styles["BodyText"]))

    if data.frames:
        story.append(PageBreak())
        story.append(Paragraph("Per-frame scores", styles["Heading2"]))
        rows = [["Frame", "Time (s)", "Person", "P(fake)", "Expression", "Detector conf.", "Box (x1, y1, x2, y2)"]]
        for frame in data.frames:
            if not frame.faces:
                rows.append([frame.index, f"{frame.timestamp_s:.2f}", "–", "no face", "", "", ""])
            for face in frame.faces:
                box = ", ".join(f"{v:.0f}" for v in face.box)
                conf = f"{face.detector_confidence:.3f}" + (" (interp.)" if face.interpolated else "")
                rows.append(
                    [
                        frame.index,
                        f"{frame.timestamp_s:.2f}",
                        face.track_id,
                        f"{face.fake_probability:.3f}",
                        face.emotion or "–",
                        conf,
                        box,
                    ]
                )
        story.append(_table(rows, None, TableStyle, colors, header=True, font_size=7))

    case = f"Case {s['id']}" if s.get("id") else f"File SHA-256 {f['sha256'][:16]}…"
    doc.build(story, canvasmaker=numbered_canvas(case))
    return buffer.getvalue()


def numbered_canvas(label: str):
    """A reportlab canvas that writes `label` and "page N of M" at the foot of every page
    (M is known only at the end: pages are kept and drawn then)."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for number, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.setFillGray(0.4)
                self.drawString(16 * mm, 8 * mm, label)
                self.drawRightString(self._pagesize[0] - 16 * mm, 8 * mm, f"page {number} of {len(self._pages)}")
                super().showPage()
            super().save()

    return NumberedCanvas


def report_filename(analysis: Analysis, extension: str) -> str:
    """`interview-45c5b349.pdf`: the original's name and the case, safe in any file system."""
    from django.utils.text import slugify

    stem = slugify(Path(analysis.upload.original_name).stem)[:60] or "analysis"
    return f"{stem}-{analysis.pk.hex[:8]}.{extension}"


def download(analysis: Analysis, fmt: str) -> HttpResponse:
    """The report of an analysis as a file download: "pdf", "json" or "csv"."""
    data = from_analysis(analysis)
    if fmt == "json":
        response = JsonResponse(as_json(data), json_dumps_params={"indent": 2})
    elif fmt == "csv":
        response = HttpResponse(as_csv(data), content_type="text/csv; charset=utf-8")
    elif fmt == "pdf":
        response = HttpResponse(as_pdf(data), content_type="application/pdf")
    else:
        raise Http404("no such report format")
    response["Content-Disposition"] = f'attachment; filename="{report_filename(analysis, fmt)}"'
    return response


def _image(path: Path | None, size: float, image_class):
    if path is None or not path.is_file():
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
