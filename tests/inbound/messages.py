"""HL7 v2 messages for the inbound tests, built the way a laboratory system or a monitor gateway sends them."""

from datetime import UTC, datetime

MRN_SYSTEM = "IL2WARD"


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def oru(
    control_id: str,
    results: list[tuple],
    *,
    at: datetime,
    mrn: str = "A-0001",
    authority: str = MRN_SYSTEM,
    app: str = "LAB",
    order: str = "ORD-1",
    status: str = "F",
    version: str = "2.5.1",
) -> str:
    """results: (code, value, unit) LOINC, or (code, value, unit, system[, status])."""
    segments = [
        f"MSH|^~\\&|{app}|HOSP|IL2WARD|WARD|{hl7_time(at)}||ORU^R01^ORU_R01|{control_id}|P|{version}",
        f"PID|1||{mrn}^^^{authority}^MR||Alpha^Pat||19700501|F",
        f"OBR|1||{order}|PANEL^Panel^L|||{hl7_time(at)}",
    ]
    for n, result in enumerate(results, start=1):
        code, value, unit, *rest = result
        system = rest[0] if rest else "LN"
        obx_status = rest[1] if len(rest) > 1 else status
        segments.append(f"OBX|{n}|NM|{code}^^{system}||{value}|{unit}|||||{obx_status}")
    return "\r".join(segments) + "\r"


def adt(
    control_id: str,
    event: str,
    *,
    at: datetime,
    mrn: str = "A-0009",
    ward: str = "onc-a",
    family: str = "Gamma",
    given: str = "Gus",
    birth: str = "19800101",
    sex: str = "M",
) -> str:
    return (
        "\r".join(
            [
                f"MSH|^~\\&|PAS|HOSP|IL2WARD|WARD|{hl7_time(at)}||ADT^{event}^ADT_A01|{control_id}|P|2.5.1",
                f"EVN|{event}|{hl7_time(at)}",
                f"PID|1||{mrn}^^^{MRN_SYSTEM}^MR||{family}^{given}||{birth}|{sex}",
                f"PV1|1|I|{ward}^12^A",
            ]
        )
        + "\r"
    )


MONITOR_VITALS = [
    ("150021", 118, "mm[Hg]", "MDC"),
    ("150022", 72, "mm[Hg]", "MDC"),
    ("147842", 88, "/min", "MDC"),
    ("151562", 16, "/min", "MDC"),
    ("150456", 97, "%", "MDC"),
    ("150344", "37.2", "Cel", "MDC"),
]
