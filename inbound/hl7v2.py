"""HL7 v2 in: what a message says (parsed with the `hl7` library) and the ACK that answers it.

Nothing here touches the database; inbound.services decides what a message does.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import hl7

SUPPORTED = {"ORU^R01", "ADT^A01", "ADT^A02", "ADT^A03", "ADT^A08"}
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")

# HL7 table 0357 (message error condition codes) used in ERR-3.
HL7_ERROR = {
    "malformed": ("100", "Segment sequence error"),
    "missing_field": ("101", "Required field missing"),
    "bad_value": ("102", "Data type error"),
    "unknown_code": ("103", "Table value not found"),
    "unsupported_message": ("200", "Unsupported message type"),
    "unsupported_version": ("203", "Unsupported version id"),
    "unknown_patient": ("204", "Unknown key identifier"),
    "other": ("207", "Application internal error"),
}


class Refusal(Exception):
    """Why a message is refused: a stable code, where (e.g. "PID-3", "OBX-5" with the OBX's set id) and a text that
    names codes and units, never patient data. `ack` is AR (the message itself is unusable) or AE (its content)."""

    def __init__(self, code: str, where: str, text: str, *, ack: str = "AE", hl7_error: str = "other", seq: int = 1):
        super().__init__(f"{code} at {where}: {text}")
        self.code, self.where, self.text, self.ack, self.hl7_error, self.seq = code, where, text, ack, hl7_error, seq

    @property
    def field(self) -> str:
        segment, _, position = self.where.partition("-")
        return f"{segment}[{self.seq}]-{position}" if self.seq > 1 else self.where


@dataclass
class Obx:
    seq: int
    codes: list[tuple[str, str]]
    value: str
    unit: str
    status: str
    observed_at: str
    sub_id: str = ""  # OBX-4: tells apart two results of one code in one order


@dataclass
class Group:
    """One OBR and the OBX segments after it: one order, observed at its own time (OBR-7, else its first OBX-14)."""

    seq: int
    order_ref: str
    obr_at: str
    obx: list[Obx] = field(default_factory=list)


@dataclass
class Parsed:
    message: hl7.Message
    control_id: str
    message_type: str
    version: str
    sending_app: str
    sending_facility: str
    sent_at: str
    identifiers: list[tuple[str, set[str]]] = field(default_factory=list)
    family: str = ""
    given: str = ""
    birth_date: str = ""
    sex: str = ""
    ward_code: str = ""
    event_at: str = ""
    order_ref: str = ""
    obr_at: str = ""
    obx: list[Obx] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.given, self.family) if part)


def normalise(raw: str) -> str:
    """Segments end in CR; files and some senders use LF or CRLF."""
    return "\r".join(line for line in raw.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line.strip())


def sha256(raw: str) -> str:
    return hashlib.sha256(normalise(raw).encode()).hexdigest()


def _f(segment, field_num: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    try:
        return segment.extract_field(1, field_num, rep, comp, sub).strip()
    except (IndexError, KeyError):
        return ""


BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")


def is_batch(raw: str) -> bool:
    return normalise(raw)[:3] in ("FHS", "BHS")


def split_batch(raw: str) -> list[str]:
    """The messages of an HL7 batch file (FHS/BHS ... BTS/FTS, read by hl7.parse_file). A batch whose trailer
    counts other than the messages found (BTS-1), e.g. one cut short, is refused whole (AR at BTS-1)."""
    try:
        parsed = hl7.parse_file(normalise(raw))
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds on a broken file
        raise Refusal("malformed", "BHS-1", f"Not a readable HL7 batch ({type(exc).__name__}).", ack="AR",
                      hl7_error="malformed") from exc  # fmt: skip
    messages = []
    for batch in parsed:
        found = [str(message).rstrip("\r") + "\r" for message in batch]
        trailer = batch.trailer
        if trailer is not None and len(trailer) > 1 and str(trailer[1]).strip():
            counted = str(trailer[1]).strip()
            if not counted.isdigit() or int(counted) != len(found):
                raise Refusal("malformed", "BTS-1", f"The batch trailer counts {counted} messages, {len(found)} "
                              "were received.", ack="AR", hl7_error="malformed")  # fmt: skip
        messages += found
    return messages


def batch_ack(acks: list[str], *, now: datetime) -> str:
    """The answer to a batch: its messages' ACKs in order, wrapped in BHS/BTS (BTS-1 their count)."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    return f"BHS|^~\\&|IL2WARD||||{stamp}\r" + "".join(acks) + f"BTS|{len(acks)}\r"


def header_ids(raw: str) -> tuple[str, str]:
    """(sending application, control id) from a message too broken to parse, so its refusal can still be logged."""
    for line in normalise(raw).split("\r"):
        if line.startswith("MSH") and len(line) > 4:
            parts = line.split(line[3])
            app = parts[2].split("^")[0] if len(parts) > 2 else ""
            return app, parts[9] if len(parts) > 9 else ""
    return "", ""


def parse(raw: str) -> Parsed:
    text = normalise(raw)
    if not text.startswith("MSH"):
        raise Refusal("malformed", "MSH-1", "The message does not start with an MSH segment.", ack="AR",
                      hl7_error="malformed")  # fmt: skip
    try:
        message = hl7.parse(text)
        msh = message.segment("MSH")
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds on a broken message
        raise Refusal("malformed", "MSH-1", f"Not parseable HL7 v2 ({type(exc).__name__}).", ack="AR",
                      hl7_error="malformed") from exc  # fmt: skip
    parsed = Parsed(
        message=message,
        control_id=_f(msh, 10),
        message_type=f"{_f(msh, 9, comp=1)}^{_f(msh, 9, comp=2)}",
        version=_f(msh, 12),
        sending_app=_f(msh, 3) or _f(msh, 4),
        sending_facility=_f(msh, 4),
        sent_at=_f(msh, 7),
    )
    if not parsed.control_id:
        raise Refusal("missing_field", "MSH-10", "No message control id.", ack="AR", hl7_error="missing_field")
    if not parsed.sending_app:
        raise Refusal("missing_field", "MSH-3", "No sending application.", ack="AR", hl7_error="missing_field")
    if parsed.version and parsed.version not in VERSIONS:
        raise Refusal("unsupported_version", "MSH-12", f"Version {parsed.version} (accepted: {', '.join(VERSIONS)}).",
                      ack="AR", hl7_error="unsupported_version")  # fmt: skip
    if parsed.message_type not in SUPPORTED:
        raise Refusal("unsupported_message", "MSH-9", f"{parsed.message_type} is not accepted here.", ack="AR",
                      hl7_error="unsupported_message")  # fmt: skip
    segments = {str(s[0]).strip(): s for s in reversed(list(message))}  # the first of each kind
    pid = segments.get("PID")
    if pid is None:
        raise Refusal("missing_field", "PID-3", "No PID segment.", hl7_error="missing_field")
    repetitions = pid(3) if len(pid) > 3 else []
    for rep in range(1, len(repetitions) + 1):
        ident = _f(pid, 3, rep, 1)
        authority = {_f(pid, 3, rep, 4, sub) for sub in (1, 2)} - {""}
        if ident:
            parsed.identifiers.append((ident, authority))
    parsed.family, parsed.given = _f(pid, 5, 1, 1), _f(pid, 5, 1, 2)
    parsed.birth_date, parsed.sex = _f(pid, 7), _f(pid, 8)
    if pv1 := segments.get("PV1"):
        parsed.ward_code = _f(pv1, 3, 1, 1)
    if evn := segments.get("EVN"):
        parsed.event_at = _f(evn, 6) or _f(evn, 2)
    if obr := segments.get("OBR"):
        parsed.order_ref = _f(obr, 3) or _f(obr, 2)
        parsed.obr_at = _f(obr, 7)
    # Each OBR opens a group; OBX segments before any OBR (some monitor gateways send none) form a group of their own.
    group, obr_count = None, 0
    for segment in message:
        kind = str(segment[0]).strip()
        if kind == "OBR":
            obr_count += 1
            group = Group(seq=obr_count, order_ref=_f(segment, 3) or _f(segment, 2), obr_at=_f(segment, 7))
            parsed.groups.append(group)
        elif kind == "OBX":
            if group is None:
                group = Group(seq=0, order_ref="", obr_at="")
                parsed.groups.append(group)
            seq = len(parsed.obx) + 1  # the OBX's occurrence in the message (ERR-2 ERL), not OBX-1 (per group)
            codes = [(_f(segment, 3, 1, 3), _f(segment, 3, 1, 1)), (_f(segment, 3, 1, 6), _f(segment, 3, 1, 4))]
            obx = Obx(
                seq=seq,
                codes=[(s, c) for s, c in codes if c],
                value=_f(segment, 5),
                unit=_f(segment, 6, 1, 1),
                status=_f(segment, 11).upper(),
                observed_at=_f(segment, 14),
                sub_id=_f(segment, 4),
            )
            parsed.obx.append(obx)
            group.obx.append(obx)
    return parsed


def parse_time(text: str, *, zone, where: str, seq: int = 1) -> datetime:
    """An HL7 DTM; without a UTC offset it is the ward's local time (what the hospital's systems send)."""
    if not text:
        raise Refusal("missing_field", where, "No date/time.", hl7_error="missing_field", seq=seq)
    try:
        value = hl7.parse_datetime(text)
    except (ValueError, TypeError) as exc:
        raise Refusal("bad_value", where, "Not an HL7 date/time.", hl7_error="bad_value", seq=seq) from exc
    if value is None:
        raise Refusal("missing_field", where, "No date/time.", hl7_error="missing_field", seq=seq)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def parse_date(text: str, *, where: str) -> date:
    try:
        if len(text) < 8 or not text[:8].isdigit():
            raise ValueError(text)
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError as exc:
        raise Refusal("bad_value", where, "Not a date (YYYYMMDD).", hl7_error="bad_value") from exc


SEX = {"F": "female", "M": "male", "O": "other", "A": "other", "U": "unknown", "N": "unknown", "": "unknown"}


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )


def ack(parsed: Parsed | None, raw: str, *, code: str, refusal: Refusal | None, ack_id: str, now: datetime) -> str:
    """AA, or AE/AR with an ERR segment naming the field (ERR-1 as v2.3 ELD, ERR-2 as v2.5 ERL, ERR-3, ERR-4 E)."""
    if parsed is not None:
        message = parsed.message.create_ack(code, message_id=ack_id)
        segments = [str(s) for s in message]
    else:
        _, control_id = header_ids(raw)
        stamp = now.strftime("%Y%m%d%H%M%S")
        segments = [f"MSH|^~\\&|IL2WARD||||{stamp}||ACK|{ack_id}|P|2.5.1", f"MSA|{code}|{_escape(control_id)}"]
    if refusal is not None:
        segments[1] = f"{segments[1]}|{_escape(refusal.text)[:80]}"
        segment, _, position = refusal.where.partition("-")
        error, label = HL7_ERROR.get(refusal.hl7_error, HL7_ERROR["other"])
        eld = f"{segment}^{refusal.seq}^{position}^{error}&{label}&HL70357"
        erl = f"{segment}^{refusal.seq}^{position}"
        segments.append(f"ERR|{eld}|{erl}|{error}^{label}^HL70357|E||||{_escape(refusal.text)}")
    return "\r".join(segments) + "\r"
