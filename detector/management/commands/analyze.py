"""Analyse photos and videos from the command line, in this process (no worker, no database
needed unless --save).

    python manage.py analyze clip.mp4 photo.jpg --frames 32 --format json
    python manage.py analyze clip.mp4 --report clip.pdf
    python manage.py analyze folder/*.mp4 --save --user alice
    python manage.py analyze --live clip.mp4     # play it in real time, print the rolling score
    python manage.py analyze --live 0            # the same for camera 0 (Ctrl-C stops)

Exit status: 0 when every file was analysed, 1 when any failed (its line says why), 2 for
bad arguments.
"""

import json
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from detector import reports, services, summary
from detector.tasks import trust_anchors
from ml.errors import EngineError
from ml.formats import DEFAULT_FRAMES, MAX_FRAMES, MIN_FRAMES


class Command(BaseCommand):
    help = "Analyse photos and videos in this process and print their verdicts."
    requires_system_checks = []  # runs with no database at all unless --save

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", help="photos and videos")
        parser.add_argument(
            "--frames", type=int, default=DEFAULT_FRAMES, help=f"frames per video ({MIN_FRAMES}-{MAX_FRAMES})"
        )
        parser.add_argument("--model", default="", help="model name (default: the default for each file type)")
        parser.add_argument("--format", choices=["text", "json"], default="text", help="json: one object per line")
        parser.add_argument("--report", help="write the PDF report here (a folder when several files)")
        parser.add_argument("--save", action="store_true", help="also store each analysis in the database")
        parser.add_argument("--user", help="the owner of saved analyses (with --save)")
        parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
        parser.add_argument(
            "--live",
            action="store_true",
            help="play one video (or camera index) in real time and print a rolling score every --interval",
        )
        parser.add_argument("--interval", type=float, default=0.3, help="seconds between live scores")
        parser.add_argument("--window", type=int, default=8, help="frames in the live rolling mean")
        parser.add_argument("--duration", type=float, default=0, help="stop live scoring after this many seconds")

    def handle(self, *args, files, frames, model, format, report, save, user, no_progress, live, **options) -> None:
        if live:
            if len(files) != 1:
                raise CommandError("--live takes one video file or camera index")
            self._live(files[0], model, format, options["interval"], options["window"], options["duration"])
            return
        if not MIN_FRAMES <= frames <= MAX_FRAMES:
            raise CommandError(f"--frames must be between {MIN_FRAMES} and {MAX_FRAMES}")
        owner = self._owner(user) if save else None
        report_dir = None
        if report and len(files) > 1:
            report_dir = Path(report)
            report_dir.mkdir(parents=True, exist_ok=True)
        failures = 0
        for number, name in enumerate(files, 1):
            path = Path(name)
            progress = None if no_progress else _Progress(f"[{number}/{len(files)}] {path.name}")
            line = self._analyse(path, frames, model, progress)
            if progress:
                progress.clear()
            result = line.pop("_result", None)
            if result is not None:
                pdf_path = (report_dir / f"{path.stem}.pdf") if report_dir else Path(report) if report else None
                if pdf_path:
                    self._write_pdf(result, path, pdf_path)
                    line["report"] = str(pdf_path)
                if owner is not None:
                    line["saved_analysis"] = self._save(owner, path, frames, model, result)
            if line["error"] or line["verdict"] == "no_face":
                failures += 1
            self.stdout.write(json.dumps(line) if format == "json" else _text(line))
        if failures:
            sys.exit(1)

    def _live(self, source: str, model: str, format: str, interval: float, window: int, duration: float) -> None:
        from ml.inference import get_detector
        from ml.live import LiveScorer, RollingScore, play

        if not source.isdigit() and not Path(source).is_file():
            raise CommandError(f"no such file: {source}")
        detector = get_detector(model or None, "image", settings.DEEPFAKE_MODEL_DIR, settings.DEEPFAKE_DEVICE)
        scorer = LiveScorer(detector, emotions=settings.DEEPFAKE_EMOTIONS)
        scorer.warm_up()
        rolling = RollingScore(window)
        scores = []
        try:
            for position, frame in play(int(source) if source.isdigit() else source, scorer, interval):
                mean = rolling.add(frame.fake_probability)
                if frame.fake_probability is not None:
                    scores.append(frame.fake_probability)
                line = {
                    "time_s": round(position, 2),
                    "faces": len(frame.faces),
                    "fake_probability": frame.to_dict()["fake_probability"],
                    "rolling": None if mean is None else round(mean, 4),
                    "verdict": None if mean is None else detector.calibration.verdict(mean),
                    "emotion": frame.faces[0].emotion if frame.faces else None,
                    "milliseconds": round(frame.milliseconds),
                }
                self.stdout.write(json.dumps(line) if format == "json" else _live_text(line))
                if duration and position >= duration:
                    break
        except ValueError as error:
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            pass
        summary = f"{len(scores)} frames with a face"
        if scores:
            summary += f", mean P(fake) {sum(scores) / len(scores):.3f}, max {max(scores):.3f}"
        self.stderr.write(summary)

    def _owner(self, username: str | None):

        if not username:
            raise CommandError("--save needs --user USERNAME (the owner of the saved analyses)")
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None

    def _analyse(self, path: Path, frames: int, model: str, progress) -> dict:
        from ml.inference import analyze_file

        line = {"file": str(path), "media_type": None, "verdict": None, "fake_probability": None, "error": None}
        try:
            result = analyze_file(
                path,
                frames,
                model or None,
                model_dir=settings.DEEPFAKE_MODEL_DIR,
                device=settings.DEEPFAKE_DEVICE,
                progress=progress,
                emotions=settings.DEEPFAKE_EMOTIONS,
                trust_anchors=trust_anchors(),
            )
        except EngineError as exc:
            line["error"] = {"reason": exc.reason, "message": str(exc)}
            return line
        line["media_type"] = result.media_type
        if result.note:
            line["note"] = result.note
            self.stderr.write(f"{path.name}: {result.note}")
        data = result.to_dict()
        line.update(
            **summary.verdict_fields(result),
            people=data["tracks"],
            frames=[
                {
                    "index": f["index"],
                    "timestamp_s": f["timestamp_s"],
                    "fake_probability": round(speaker.fake_probability, 4) if speaker else None,
                    "emotion": speaker.emotion if speaker else None,
                    "faces": [
                        {k: face[k] for k in ("track_id", "box", "fake_probability", "detector_confidence", "emotion")}
                        for face in f["faces"]
                    ],
                }
                for f, speaker in zip(data["frames"], map(result.frame_face, result.frames), strict=True)
            ],
            emotions=data["emotions"],
            emotion_changes=data["emotion_changes"],
            provenance=data["provenance"],
            timings=data["timings"],
        )
        if result.verdict == "no_face":
            line["error"] = {"reason": "no_face", "message": "no face was found"}
        line["_result"] = result
        return line

    def _write_pdf(self, result, path: Path, pdf_path: Path) -> None:

        with tempfile.TemporaryDirectory() as images:
            data = reports.from_result(result, path, Path(images))
            pdf_path.write_bytes(reports.as_pdf(data))

    def _save(self, owner, path: Path, frames: int, model: str, result) -> str:

        with path.open("rb") as handle:
            analysis = services.record_analysis(owner, handle, path.name, frames, model, result)
        return str(analysis.pk)


class _Progress:
    """A one-line progress indicator on stderr: file, stage and percentage."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, stage: str, fraction: float) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{self.label}: {stage} {fraction:4.0%}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _text(line: dict) -> str:
    if line["error"] and line["verdict"] != "no_face":
        return f"{line['file']}: FAILED ({line['error']['reason']}) {line['error']['message']}"
    if line["verdict"] == "no_face":
        return f"{line['file']}: NO FACE in {line['frames_analyzed']} frame(s) (no_face)"
    return (
        f"{line['file']}: {line['verdict'].upper()} P(fake)={line['fake_probability']:.3f} "
        f"confidence={line['confidence']:.0%} model={line['model_name']} ({line['model_version']}) "
        f"frames={line['frames_analyzed']} faces={line['faces_detected']} {line['timings']['total']:.1f}s"
    )


def _live_text(line: dict) -> str:
    if line["rolling"] is None:
        return f"{line['time_s']:7.2f} s  no face yet  ({line['milliseconds']} ms)"
    p = "   –  " if line["fake_probability"] is None else f"{line['fake_probability']:.3f}"
    emotion = f"  {line['emotion']}" if line["emotion"] else ""
    return (
        f"{line['time_s']:7.2f} s  faces {line['faces']}  P(fake) {p}  rolling {line['rolling']:.3f} "
        f"{line['verdict'].upper():9}{emotion}  ({line['milliseconds']} ms)"
    )
