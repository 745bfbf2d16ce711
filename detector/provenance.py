"""The file's provenance (`Upload.provenance`, written by `ml.provenance`) as people read it:
sections of (label, value) rows, shared by the result page and the PDF report.

Missing metadata is stated neutrally: most platforms strip it, so its absence says nothing
about the pixels. Metadata is a claim by whoever wrote the file; only a valid C2PA
signature binds a claim to a signer.
"""

from dataclasses import dataclass, field

from ml.provenance import CREDENTIAL_STATES, SOURCE_TYPES

# Encoder tags, as a reader would want them explained.
ENCODERS = {
    "Lavf": "FFmpeg (libavformat): the file was last written by FFmpeg-based software (re-encoded or remuxed)",
    "Lavc": "FFmpeg (libavcodec): encoded by FFmpeg-based software",
    "HandBrake": "HandBrake: re-encoded",
    "Google": "Google: processed by a Google service",
}
MISSING_METADATA = "No camera or software metadata. Most platforms strip it on upload, so its absence says nothing."
UNREADABLE = "unreadable"


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""
    anchor: str = ""

    def add(self, label: str, value) -> None:
        if value not in (None, ""):
            self.rows.append((label, str(value)))


def source_type(code: str) -> str:
    return f"{SOURCE_TYPES.get(code, code)} ({code})" if code else ""


def encoder(tag: str) -> str:
    meaning = next((text for prefix, text in ENCODERS.items() if tag.startswith(prefix)), "")
    return f"{tag} — {meaning}" if meaning else tag


def device(make: str, model: str) -> str:
    """ "Canon EOS 5D", not "Canon Canon EOS 5D": many models already start with the make."""
    if make and model.lower().startswith(make.split()[0].lower()):
        return model
    return " ".join(v for v in (make, model) if v)


def ai_statement(provenance: dict) -> str:
    """What the file says about AI generation ("" when nothing), as `ml.provenance` put it."""
    return (provenance or {}).get("ai_statement", "")


def sections(provenance: dict, sha256: str, media_type: str) -> list[Section]:
    """Readable sections of a provenance read-out. An empty read-out (an analysis from before
    provenance was read, or one that failed before it) gives the fingerprint alone."""
    provenance = provenance or {}
    fingerprints = Section("Fingerprints", anchor="provenance-fingerprints")
    fingerprints.add("SHA-256", sha256)
    if provenance.get("perceptual_hash"):
        fingerprints.add("Perceptual hash", provenance["perceptual_hash"])
    elif media_type == "video" and provenance:
        fingerprints.add("Perceptual hashes", "one per analysed frame (in the frame table and reports)")
    if not provenance:
        fingerprints.note = "This analysis ran before the file's provenance was read: analyse it again to read it."
        return [fingerprints]
    result = [_credentials(provenance.get("content_credentials") or {})]
    if provenance.get("photo"):
        result.append(_photo(provenance["photo"]))
    if provenance.get("container"):
        result.append(_container(provenance["container"]))
    result.append(fingerprints)
    return result


def _credentials(c: dict) -> Section:
    state = c.get("state", UNREADABLE)
    section = Section("Content Credentials (C2PA)", anchor="provenance-c2pa")
    section.add("State", CREDENTIAL_STATES.get(state, state))
    if state in ("absent", "unsupported"):
        return section
    if state == UNREADABLE:
        section.add("Why", c.get("note"))
        return section
    section.add("Signed by", " · ".join(v for v in (c.get("signer"), c.get("issuer")) if v))
    section.add("Signed at", c.get("signed_at"))
    section.add("Made with", c.get("claim_generator"))
    section.add("Title", c.get("title"))
    section.add("Source", source_type(c.get("digital_source_type", "")))
    section.add("Actions", "; ".join(_action(a) for a in c.get("actions") or []))
    ingredients = [
        f"{i['title'] or 'untitled'} ({i['relationship'] or 'ingredient'})" for i in c.get("ingredients") or []
    ]
    section.add("Made from", "; ".join(ingredients))
    problems = [f"{p['code']}: {p['explanation']}" for p in c.get("problems") or []]
    section.add("Validation problems", "; ".join(problems))
    section.note = c.get("note", "")
    return section


def _unreadable(section: Section, data: dict, default: str) -> bool:
    """Say so in the section when a reader could not read its part of the file."""
    if data.get("state") != UNREADABLE:
        return False
    section.add("State", f"unreadable ({data.get('note') or default})")
    return True


def _action(action: dict) -> str:
    text = action["action"]
    if action.get("software_agent"):
        text += f" by {action['software_agent']}"
    if action.get("digital_source_type"):
        text += f" ({SOURCE_TYPES.get(action['digital_source_type'], action['digital_source_type'])})"
    return text


def _photo(p: dict) -> Section:
    section = Section("Camera and software metadata (EXIF, XMP)", anchor="provenance-metadata")
    if _unreadable(section, p, "malformed metadata"):
        return section
    if p.get("state") == "absent":
        section.note = MISSING_METADATA
        return section
    section.add("Camera", device(p.get("make", ""), p.get("model", "")))
    section.add("Software", p.get("software"))
    section.add("Creator tool (XMP)", p.get("creator_tool"))
    section.add("Taken", p.get("taken_at"))
    section.add("Modified", p.get("modified_at"))
    section.add("Position (GPS)", "recorded (not kept here)" if p.get("gps") else "none recorded")
    section.add("Orientation", p.get("orientation"))
    if p.get("declared_size"):
        section.add(
            "Recorded size", f"{p['declared_size']}: differs from the image's, so it was resized or cropped since"
        )
    thumbnail = {
        "matches": "matches the image",
        "differs": "differs from the image: the picture was changed after the thumbnail was made "
        "(a classic sign of editing; some editors keep the camera's thumbnail)",
        "unreadable": "present but unreadable",
    }.get(p.get("thumbnail", "absent"), "")
    section.add("Embedded thumbnail", thumbnail)
    section.add("Source (XMP, unsigned)", source_type(p.get("digital_source_type", "")))
    return section


def _container(c: dict) -> Section:
    section = Section("Container and encoder", anchor="provenance-container")
    if _unreadable(section, c, "malformed container"):
        return section
    section.add("Format", c.get("format"))
    section.add(
        "Video codec", " ".join(v for v in (c.get("codec"), f"({c['profile']})" if c.get("profile") else "") if v)
    )
    section.add("Encoder tag", encoder(c.get("encoder", "")) or "none (most cameras and phones write none)")
    section.add("Encoder library", c.get("writing_library"))
    section.add("Device", " ".join(v for v in (device(c.get("make", ""), c.get("model", "")), c.get("software")) if v))
    section.add("Created", c.get("creation_time") or "not recorded")
    if c.get("frame_rate"):
        section.add("Frame rate", f"{c['frame_rate']:g} fps, {c.get('frame_rate_mode') or 'mode unknown'}")
    section.add("Rotation", f"{c.get('rotation', 0)}°")
    section.add("Audio", c.get("audio_codec") or "yes" if c.get("audio") else "none")
    if c.get("bit_rate"):
        section.add("Bit rate", f"{c['bit_rate'] / 1000:,.0f} kbit/s")
    section.note = c.get("note", "")
    return section
