"""The report as a PDF a person can file: verdict, file facts, what the file says about
itself, charts, evidence, method, and the per-frame table and chain of custody as appendices.

Each section is a function that appends flowables to the story; `_Page` carries what they
share (styles, the usable width, reportlab's classes, imported once per report).
"""

import io
from pathlib import Path
from xml.sax.saxutils import escape

from django.utils import timezone
from PIL import Image as PILImage

from detector import provenance
from detector.catalog import accuracy_sentence
from detector.reports import figures
from detector.reports.data import EMOTION_NOTE, LIMITS_TEXT, METHOD_TEXT, ReportData
from detector.verdicts import read as read_verdict


class _Page:
    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.styles import getSampleStyleSheet
        from reportlab.lib.units import mm
        from reportlab.platypus import Image, PageBreak, Paragraph, Spacer, Table, TableStyle

        self.colors, self.mm, self.A4 = colors, mm, A4
        self.Image, self.PageBreak, self.Paragraph, self.Spacer = Image, PageBreak, Paragraph, Spacer
        self.Table, self.TableStyle = Table, TableStyle
        self.styles = getSampleStyleSheet()
        self.body = self.styles["BodyText"]
        self.small = self.body.clone("small", fontSize=8, leading=10)
        self.mono = self.body.clone("mono", fontName="Courier", fontSize=7, leading=9)
        self.width = A4[0] - 32 * mm

    def heading(self, text: str, level: int = 2):
        return self.Paragraph(text, self.styles[f"Heading{level}"])

    def text(self, text: str, style=None):
        return self.Paragraph(escape(text), style or self.body)

    def table(self, rows, widths=None, header: bool = False, font_size: int = 8):
        table = self.Table(rows, colWidths=widths, repeatRows=1 if header else 0)
        style = [
            ("FONTSIZE", (0, 0), (-1, -1), font_size),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, self.colors.HexColor("#dddddd")),
        ]
        if header:
            style += [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("BACKGROUND", (0, 0), (-1, 0), self.colors.HexColor("#eeeeee")),
            ]
        else:
            style += [("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold")]
        table.setStyle(self.TableStyle(style))
        return table

    def facts(self, rows: list[tuple[str, object]]):
        """A two-column table of label and value; long values wrap."""
        cells = [
            [label, value if not isinstance(value, str) else self.text(value, self.small)] for label, value in rows
        ]
        return self.table(cells, [38 * self.mm, self.width - 38 * self.mm])

    def image(self, path: Path | None, size: float):
        if path is None or not path.is_file():
            return ""

        with PILImage.open(path) as pil:
            ratio = pil.height / pil.width
        return self.Image(str(path), width=size, height=size * ratio)


def as_pdf(data: ReportData) -> bytes:
    from reportlab.platypus import SimpleDocTemplate

    page = _Page()
    mm = page.mm
    s = data.summary
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=page.A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Deepfake analysis of {s['file']['name']}",
    )
    story = [page.Paragraph("Deepfake forensics report", page.styles["Title"])]
    for section in (
        _verdict,
        _file_facts,
        _provenance,
        _scores,
        _expressions,
        _frames,
        _faces,
        _reviews,
        _method,
        _frame_table,
        _custody,
    ):
        section(page, data, story)
    case = f"Case {s['id']}" if s.get("id") else f"File SHA-256 {s['file']['sha256'][:16]}…"
    doc.build(story, canvasmaker=numbered_canvas(case))
    return buffer.getvalue()


def _verdict(page: _Page, data: ReportData, story: list) -> None:
    s = data.summary
    verdict = (s["verdict"] or s["status"]).replace("_", " ").upper()
    colour = {"FAKE": "#c62828", "REAL": "#2e7d32"}.get(verdict, "#b26a00")
    style = page.styles["Heading1"].clone("verdict", textColor=page.colors.HexColor(colour))
    story.append(page.Paragraph(f"Verdict: {verdict}", style))
    if s["fake_probability"] is not None:
        # The same reading as the result page: the score against the band, in enough digits.
        reading = read_verdict(s["fake_probability"], s["threshold"], s["uncertain_low"], s["uncertain_high"])
        story.append(page.text(reading.sentence))
    if s["failure_message"]:
        story.append(page.text(s["failure_message"]))
    claim = provenance.ai_statement(s.get("provenance") or {})
    if claim:
        # Beside the verdict, never in it: the file's own statement, set apart and bold.
        story.append(
            page.Paragraph(
                f"<b>What the file says about itself:</b> {escape(claim)} This is the file's own statement; "
                "the verdict above is the model's reading of the pixels, made without it.",
                page.body.clone("claim", borderColor=page.colors.HexColor("#b26a00"), borderWidth=1, borderPadding=4),
            )
        )


def _file_facts(page: _Page, data: ReportData, story: list) -> None:
    s, f = data.summary, data.summary["file"]
    rows = [
        ("File", f["name"]),
        ("SHA-256", f["sha256"]),
        ("Type, size", f"{f['media_type']}, {f['size_bytes']:,} bytes"),
        ("Resolution", f"{f['width']}x{f['height']}" if f["width"] else "–"),
        ("Duration", f"{f['duration_s']:.1f} s at {f['fps']:.2f} fps" if f["duration_s"] else "–"),
        ("Model", f"{s['model_name'] or '–'} ({s['model_version'] or '–'})"),
        ("Model accuracy", accuracy_sentence(s.get("model_accuracy") or {})),
        (
            "Settings",
            f"{s['settings']['frames_requested']} frames requested, {s['frames_analyzed']} analysed"
            if f["media_type"] == "video"
            else "the photo, analysed whole",
        ),
        ("Faces", f"{s['faces_detected']} detected"),
        ("Analysed", s["finished_at"] or "–"),
        ("Report generated", timezone.now().isoformat(timespec="seconds")),
    ]
    if data.reviews:
        last = data.reviews[-1]
        rows.append(
            ("Review", f"{last['decision'].replace('_', ' ')} by {last['reviewer']} ({last['created_at'][:16]})")
        )
    story.append(page.Spacer(1, 4 * page.mm))
    story.append(page.facts(rows))


def _provenance(page: _Page, data: ReportData, story: list) -> None:
    s = data.summary
    story.append(page.heading("File and provenance"))
    story.append(
        page.text(
            "What the file says about itself, read beside the model's verdict and never inside it. Metadata is a "
            "claim by whoever wrote the file; only a valid C2PA signature ties a claim to a signer.",
            page.small,
        )
    )
    for section in provenance.sections(s.get("provenance") or {}, s["file"]["sha256"], s["file"]["media_type"]):
        story.append(page.heading(section.title, 3))
        if section.rows:
            story.append(page.facts(section.rows))
        if section.note:
            story.append(page.text(section.note, page.small))


def _scores(page: _Page, data: ReportData, story: list) -> None:
    s = data.summary
    faces = data.faces_by_suspicion()
    if not faces:
        return
    story.append(page.heading("Scores"))
    if s["file"]["media_type"] == "video":
        png = figures.timeline(
            [fr.timestamp_s for fr in data.frames],
            [fr.fake_probability for fr in data.frames],
            s["threshold"],
            (s["uncertain_low"], s["uncertain_high"]),
        )
        story.append(page.Image(io.BytesIO(png), width=page.width, height=page.width * 2.4 / 7.5))
    png = figures.histogram([face.fake_probability for face in faces], s["threshold"])
    story.append(page.Image(io.BytesIO(png), width=page.width * 0.5, height=page.width * 0.5 * 2.4 / 3.8))


def _expressions(page: _Page, data: ReportData, story: list) -> None:
    s = data.summary
    if not s.get("emotions"):
        return
    is_video = s["file"]["media_type"] == "video"
    story.append(page.heading("Facial expressions"))
    mix = sorted(s["emotions"].items(), key=lambda item: -item[1])
    where = "over the video" if is_video else "in the photo"
    story.append(page.text(f"Mix {where}: " + ", ".join(f"{k} {v:.0%}" for k, v in mix), page.small))
    if is_video:
        png = figures.emotion_timeline(
            [fr.timestamp_s for fr in data.frames],
            [(face.emotions or None) if (face := data.frame_face(fr)) else None for fr in data.frames],
            s["emotion_changes"],
        )
        story.append(page.Image(io.BytesIO(png), width=page.width, height=page.width * 2.2 / 7.5))
    changes = s["emotion_changes"]
    listed = "; ".join(f"{c['from_emotion']} to {c['to_emotion']} at {c['to_timestamp_s']:.1f} s" for c in changes[:8])
    story.append(
        page.text(
            f"Abrupt changes: {len(changes)}" + (f" ({listed})" if changes else "") + ". " + EMOTION_NOTE, page.small
        )
    )


def _frames(page: _Page, data: ReportData, story: list) -> None:
    thumbs = [fr for fr in data.frames if fr.thumbnail][:8]
    if not thumbs:
        return
    story.append(page.heading("Frames"))
    cells = []
    for frame in thumbs:
        label = "no face" if frame.fake_probability is None else f"{frame.fake_probability:.0%}"
        caption = f"{frame.timestamp_s:.1f} s · {label}" + (f" · {frame.emotion}" if frame.emotion else "")
        cells.append((page.image(frame.thumbnail, page.width / 4 - 2 * page.mm), page.text(caption, page.small)))
    grid = []
    for i in range(0, len(cells), 4):
        grid.append([c[0] for c in cells[i : i + 4]])
        grid.append([c[1] for c in cells[i : i + 4]])
    story.append(page.Table(grid, colWidths=[page.width / 4] * 4))


def _faces(page: _Page, data: ReportData, story: list) -> None:
    faces = data.faces_by_suspicion()
    if not faces:
        return
    mm = page.mm
    story.append(page.heading("Most suspicious faces (crop and heatmap)"))
    rows = []
    for face in faces[:6]:
        caption = (
            f"{face.fake_probability:.0%} · frame {face.frame_index} ({face.timestamp_s:.1f} s) · "
            f"person {face.track_id}" + (f" · {face.emotion}" if face.emotion else "")
        )
        rows.append([page.image(face.crop, 28 * mm), page.image(face.heatmap, 28 * mm), page.text(caption, page.small)])
    story.append(page.Table(rows, colWidths=[31 * mm, 31 * mm, page.width - 62 * mm]))
    story.append(page.text("Heatmaps show where the model's evidence lies: model attention, not proof.", page.small))


def _reviews(page: _Page, data: ReportData, story: list) -> None:
    if not data.reviews:
        return
    mm = page.mm
    story.append(page.heading("Reviews"))
    rows = [["When", "Reviewer", "Decision", "Notes"]]
    for review in data.reviews:
        rows.append(
            [
                review["created_at"][:16],
                review["reviewer"],
                review["decision"].replace("_", " "),
                page.text(review["notes"], page.small),
            ]
        )
    story.append(page.table(rows, [30 * mm, 28 * mm, 30 * mm, page.width - 88 * mm], header=True))


def _method(page: _Page, data: ReportData, story: list) -> None:
    story.append(page.heading("Method"))
    story.append(page.text(METHOD_TEXT))
    story.append(page.heading("What the score means and does not mean"))
    story.append(page.text(LIMITS_TEXT))


def _frame_table(page: _Page, data: ReportData, story: list) -> None:
    if not data.frames:
        return
    story.append(page.PageBreak())
    story.append(page.heading("Per-frame scores"))
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
    story.append(page.table(rows, header=True, font_size=7))


def _custody(page: _Page, data: ReportData, story: list) -> None:
    custody = data.summary.get("custody") or {}
    if not custody:
        return
    story.append(page.PageBreak())
    story.append(page.heading("Chain of custody"))
    story.append(
        page.text(
            "SHA-256 of the upload, of the model's weights and of every file the analysis derived, taken when each "
            'was written. "python manage.py verify REPORT.json" recomputes them from the JSON report.',
            page.small,
        )
    )
    upload, model = custody.get("upload") or {}, custody.get("model") or {}
    rows = [
        ("Upload", upload.get("sha256", "")),
        ("Model weights", f"{model.get('name', '–')} ({model.get('version', '–')}): {model.get('sha256') or '–'}"),
    ]
    rows += [(step.replace("_", " ").capitalize(), when or "–") for step, when in (custody.get("steps") or {}).items()]
    story.append(page.facts(rows))
    files = custody.get("derived_files") or []
    if files:
        story.append(page.heading(f"Derived files ({len(files)})", 3))
        rows = [["File", "SHA-256"]] + [[Path(f["path"]).name, page.Paragraph(f["sha256"], page.mono)] for f in files]
        story.append(page.table(rows, [50 * page.mm, page.width - 50 * page.mm], header=True, font_size=7))


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
