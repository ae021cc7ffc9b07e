"""Inbound interfaces: the code mapping (as data, versioned) and the log of every message received."""

from django.conf import settings
from django.db import models


class MappingVersion(models.Model):
    """One version of the whole code mapping. Never edited: a site's change writes the next version (copying the
    rows it keeps), so every stored message can name the mapping that read it."""

    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"mapping v{self.number}"


class CodeMapping(models.Model):
    """code system + code + unit → the IL2Ward field it fills: stored = (value + offset) × factor ÷ divisor."""

    class Target(models.TextChoices):
        LABS = "labs", "Lab result column"
        VITALS = "vitals", "Vital signs field"
        IGNORE = "ignore", "Known, not stored (acknowledged)"

    version = models.ForeignKey(MappingVersion, on_delete=models.PROTECT, related_name="rows")
    system = models.CharField(max_length=64, help_text="Canonical code system: LN (LOINC), MDC (IEEE 11073).")
    code = models.CharField(max_length=64)
    display = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=32, blank=True, help_text="The unit received (UCUM), as sent.")
    target = models.CharField(max_length=16, choices=Target.choices)
    field = models.CharField(max_length=64, blank=True, help_text="LabResult column or VitalSigns field.")
    factor = models.DecimalField(max_digits=14, decimal_places=6, default=1)
    divisor = models.DecimalField(max_digits=14, decimal_places=6, default=1)
    offset = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        ordering = ["version", "system", "code", "unit"]
        constraints = [
            models.UniqueConstraint(fields=["version", "system", "code", "unit"], name="mapping_code_unit_unique"),
            models.CheckConstraint(condition=~models.Q(divisor=0), name="mapping_divisor_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.code} [{self.unit}] → {self.target}.{self.field}"


class InboundMessage(models.Model):
    """One message received (HL7 v2 or FHIR), keyed by its sender and control id: a resend is stored once.

    The raw message is kept for re-processing and shown only to administrators; it is never written to a log."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REFUSED = "refused", "Refused (dead letter)"
        REPROCESSED = "reprocessed", "Refused, then accepted on re-processing"
        DISMISSED = "dismissed", "Refused, dismissed"

    class Protocol(models.TextChoices):
        HL7V2 = "hl7v2", "HL7 v2"
        FHIR = "fhir", "FHIR"

    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.HL7V2)
    source_system = models.CharField(max_length=64, help_text="MSH-3 sending application (or the FHIR client).")
    control_id = models.CharField(max_length=128, help_text="MSH-10 / the FHIR identifier.")
    message_type = models.CharField(max_length=32, help_text="e.g. ORU^R01, ADT^A01, Observation.")
    patient = models.ForeignKey("il2ward.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    patient_ref = models.CharField(max_length=64, blank=True, help_text="The MRN as sent (matched or not).")
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=32, blank=True, help_text="e.g. unknown_patient, unknown_code.")
    error_field = models.CharField(max_length=32, blank=True, help_text="Where: PID-3, OBX-3, OBX-5 ...")
    error_text = models.TextField(blank=True, help_text="What was wrong (codes, units, never patient data).")
    raw = models.TextField()
    raw_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField(help_text="First received.")
    last_received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    times_received = models.PositiveIntegerField(default=1)
    mapping_version = models.PositiveIntegerField(null=True, blank=True)
    stored = models.JSONField(default=list, blank=True, help_text='What it wrote: ["labs:12", "vitals:40"].')

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source_system", "control_id"], name="inbound_source_control_unique")
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_received"),
            models.Index(fields=["control_id"], name="inbound_control_id"),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.source_system}/{self.control_id} {self.status}"


class ResultOrder(models.Model):
    """The newest message seen for one order of one sender (OBR-3 from MSH-3), by its send time (MSH-7): a result
    sent earlier but arriving later (another connection, a resend) never overtakes a later one or its correction or
    withdrawal. Written under the patient's lock, so two connections for one patient take turns."""

    source_system = models.CharField(max_length=64)
    order_ref = models.CharField(max_length=128)
    patient = models.ForeignKey("il2ward.Patient", on_delete=models.PROTECT, related_name="+")
    last_sent_at = models.DateTimeField(null=True, blank=True, help_text="MSH-7 of the newest message (None: absent).")
    last_control_id = models.CharField(max_length=128)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_system", "order_ref"], name="inbound_result_order_unique")
        ]

    def __str__(self) -> str:
        return f"{self.source_system}/{self.order_ref}"
