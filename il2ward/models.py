"""The hospital around the drug: wards, staff, patients, the audit trail and e-signatures."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from knox.models import AbstractAuthToken


def validate_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}")


class Role(models.TextChoices):
    NURSE = "nurse", "Nurse"
    CHARGE_NURSE = "charge_nurse", "Charge nurse"
    ONCOLOGIST = "oncologist", "Oncologist"
    PHARMACIST = "pharmacist", "Pharmacist"
    ADMIN = "admin", "Administrator"


NURSING_ROLES = (Role.NURSE, Role.CHARGE_NURSE)


class Ward(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    tz = models.CharField("time zone", max_length=64, validators=[validate_zone])
    on_call_oncologist = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="on_call_wards"
    )
    webhook_url = models.URLField(blank=True, help_text="Paging webhook: notifications are POSTed here as JSON.")
    webhook_secret = models.CharField(max_length=128, blank=True, help_text="HMAC-SHA256 key for the webhook.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped after each commit that changes what the ward's board shows (il2ward/board_version.py): its poll's ETag.
    board_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def clean(self) -> None:
        super().clean()
        if self.webhook_url and not self.webhook_secret:
            raise ValidationError({"webhook_secret": "A webhook needs a secret: nothing is sent unsigned."})


class StaffProfile(models.Model):
    """A user's ward membership and printed name (the name shown under an e-signature). Roles are Django groups."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="profile")
    printed_name = models.CharField(max_length=200, blank=True)
    wards = models.ManyToManyField(Ward, blank=True, related_name="staff")
    on_duty = models.BooleanField(default=True, help_text="Nurses on duty receive a ward's unassigned reminders.")
    # How she is notified, by channel name (il2ward.channels.REGISTRY): {"email": {"on": false}, "sms": {"on": true,
    # "phone": "+14155552671"}}. A channel she never chose has its default (il2ward.channels.wants); set by
    # il2ward.notifications.staff_profile_set_notifications, audited.
    channels = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.printed_name or self.user.get_username()


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    mrn = models.CharField("MRN", max_length=32, unique=True)
    name = models.CharField(max_length=200)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    ward = models.ForeignKey(Ward, on_delete=models.PROTECT, related_name="patients")
    assigned_nurse = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_patients"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by a discharge (the patient administration system's ADT^A03), cleared by a new admission.
    discharged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        # Never used in logs: log lines carry ids only.
        return f"{self.name} ({self.mrn})"


class AuditEvent(models.Model):
    """Append-only, HMAC-chained record of every clinical write. On PostgreSQL a trigger refuses UPDATE and DELETE,
    and the application's role may only INSERT and SELECT (il2ward.dbroles)."""

    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    old = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Which IL2WARD_AUDIT_KEYS key made `hash` (HMAC-SHA256); "" on rows written before the chain was keyed.
    key_id = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_type}:{self.object_id}"


class Signature(models.Model):
    """An e-signature: signer, printed name, meaning, time and a hash of the signed record (password re-entered)."""

    class Meaning(models.TextChoices):
        """What a signature means, in the words shown on screen and in print; the review page also tells by it what a
        signature signed. Stored as the words themselves (the rows written before this enumeration keep theirs)."""

        ELIGIBILITY = "Eligibility for high-dose IL-2 attested", "Eligibility for high-dose IL-2 attested"
        COURSE_STOP = "Course stopped", "Course stopped"
        OVERRIDE = "Hold overridden for one dose", "Hold overridden for one dose"
        CYCLE_CONTINUE = (
            "Cycle continued after a stop recommendation",
            "Cycle continued after a stop recommendation",
        )
        CYCLE_STOP = "Cycle stopped after a stop recommendation", "Cycle stopped after a stop recommendation"
        CYCLE2_MOVE = "Cycle 2 start moved", "Cycle 2 start moved"
        DISCHARGE = "Discharge date recorded", "Discharge date recorded"
        RESPONSE = "Response assessment recorded", "Response assessment recorded"

    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=200)
    meaning = models.CharField(max_length=200, choices=Meaning.choices)
    signed_at = models.DateTimeField()
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    record_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["signed_at", "pk"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.printed_name}: {self.meaning}"


class Heartbeat(models.Model):
    """Last time a periodic process (the beat's sweep) ran; /readyz reports a dead beat from it."""

    name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField()
    # A sweep step's items pushed back by its last run ("dose 42": kind and id, never patient data); empty otherwise.
    failed_items = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}Z"


class Lease(models.Model):
    """Which process may run a singleton job (`beat`: the one beat that sends the sweeps), until `expires_at`.

    Taken and renewed with one conditional UPDATE (il2ward.lease): the holder renews it, anyone else takes it only
    once it has expired. Not clinical, so not audited: the beat logs when it takes or waits for the lease.
    """

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=128)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}Z"


class Notification(models.Model):
    """The outbox: one row per (kind, subject, recipient, time bucket), written in the transaction that caused it.

    The row is the truth and the broker only a nudge: delivery state lives in NotificationDelivery rows, and a
    sweep re-sends whatever is still pending. It carries ids and codes, never free-text patient data.
    """

    class Kind(models.TextChoices):
        ASSESSMENT_DUE = "assessment_due", "Pre-dose assessment due"
        DOSE_DUE = "dose_due", "Dose due"
        DOSE_OVERDUE = "dose_overdue", "Dose overdue"
        DOSE_MISSED = "dose_missed", "Dose missed"
        HOLD_FLAGGED = "hold_flagged", "Hold criteria met"
        STOP_RECOMMENDED = "stop_recommended", "Stop recommended"
        VITALS_DUE = "vitals_due", "Vitals due"
        WEIGHT_DUE = "weight_due", "Daily weight due"
        LABS_DUE = "labs_due", "Daily labs due"
        ESCALATION = "escalation", "Escalation: hold not acknowledged"
        THIRD_HOLD = "third_hold", "Third held dose in a cycle"
        DOUBLE_CHECK_REQUESTED = "double_check_requested", "Double check waiting for a second nurse"

    # Acknowledging one of these for a dose acknowledges them all and stops the escalation (il2ward.notifications).
    HOLD_FAMILY = (Kind.HOLD_FLAGGED, Kind.STOP_RECOMMENDED, Kind.ESCALATION)

    kind = models.CharField(max_length=32, choices=Kind.choices)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    course_id = models.BigIntegerField(null=True, blank=True)
    dose_id = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    topic = models.CharField(
        max_length=200, blank=True, default="", help_text="The dedupe key without the recipient: the same event."
    )
    details = models.JSONField(default=dict, blank=True, help_text="Codes only: rule ids, cycle, dose number.")
    due_at = models.DateTimeField(null=True, blank=True, help_text="When the reminder was due (latency is from here).")
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When its work was done (no need to act).")
    resolved_reason = models.CharField(max_length=64, blank=True, default="", help_text="e.g. dose given, overridden")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "acknowledged_at"]),
            models.Index(fields=["kind", "created_at"]),
            models.Index(fields=["dose_id", "kind"], name="notification_dose_kind"),
            # The sweeps' "already reminded?" for patient-level reminders (vitals, weight, labs).
            models.Index(fields=["patient", "kind", "due_at"], name="notification_patient_kind_due"),
            models.Index(fields=["topic"], name="notification_topic"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id}"

    @property
    def label(self) -> str:
        """What a person reads: a stop_recommended raised by a `discontinue` decision (HOLD-RULES §3a INV-DISC) says
        what must happen. ASCII, as it heads e-mail subjects."""
        if self.kind == self.Kind.STOP_RECOMMENDED and (self.details or {}).get("decision") == "discontinue":
            return "Discontinue: oncologist to stop the course"
        return self.get_kind_display()


class Delivery(models.Model):
    """One channel's delivery of one notification: claimed with a conditional update, retried with backoff.

    In-app is delivered when the notification row commits (the bell reads the database). Other channels' rows start
    `pending`; a task sends them after commit and the resend sweep re-sends what is still pending at `next_attempt_at`.
    After IL2WARD_DELIVERY_MAX_ATTEMPTS failures a row is `dead` (dead-lettered) and /readyz reports it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Not sent: acknowledged first"
        DEAD = "dead", "Dead-lettered"
        DISMISSED = "dismissed", "Dead letter dismissed by an administrator"

    notification = models.ForeignKey(Notification, on_delete=models.PROTECT, related_name="deliveries")
    # A name in il2ward.channels.REGISTRY (no choices here: the registry sits above the models and reads them, and a
    # new channel needs no migration); the admin shows and filters by the registry's labels.
    channel = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="A pending row may be attempted from this time (backoff).")
    nudged_at = models.DateTimeField(
        null=True, blank=True, help_text="When a delivery task was last published for it (the sweep waits a while)."
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, help_text="An error class or HTTP status: no content.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="delivery_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next")]

    def __str__(self) -> str:
        return f"{self.channel} of notification {self.notification_id}: {self.status}"


class Medication(models.Model):
    """A patient's medication list entry, for the eligibility interaction warnings (HOLD-RULES §2)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class CalendarFeedToken(models.Model):
    """A per-user secret for subscribing to course calendars without a session; revocable."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="calendar_tokens")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"calendar token of {self.user_id}"


class SecurityEvent(models.Model):
    """The security log: sign-ins and their failures, lock-outs, re-entered password failures, API tokens issued,
    exports (with what was exported, as ids). Structured fields only, no free text: never a password, a token or a
    patient's name. Written outside the service's transaction (il2ward.security), so a refusal is still recorded."""

    class Kind(models.TextChoices):
        LOGIN = "login", "signed in"
        LOGIN_FAILED = "login_failed", "sign-in failed"
        LOGOUT = "logout", "signed out"
        LOCKOUT = "lockout", "locked out"
        PASSWORD_RECHECK_FAILED = "password_recheck_failed", "re-entered password failed"
        TOKEN_ISSUED = "token_issued", "API token issued"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        TOKEN_EXPIRED = "token_expired", "API token expired"
        UNLOCK = "unlock", "lock-out lifted"
        EXPORT = "export", "export"
        MRN_CONFLICT = "mrn_conflict", "MRN of a patient not visible to the user"
        DOUBLE_CHECK_CLOSED = "double_check_closed", "double check closed after wrong doses"
        TOKENS_PURGED = "tokens_purged", "expired API tokens purged"

    at = models.DateTimeField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    username = models.CharField(max_length=150, blank=True)  # as typed, for failures of unknown users
    ip = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=200, blank=True)  # without the query string
    detail = models.JSONField(default=dict, blank=True)  # e.g. {"format": "fhir", "course": 12}, {"purpose": ...}

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["kind", "at"]), models.Index(fields=["username", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.username}"


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox, KNOX_TOKEN_MODEL): only its SHA-512 digest and its first 15 characters (the
    look-up key) are stored, never the token. It expires (IL2WARD_API_TOKEN_HOURS) and is revoked by deleting the row
    (the owner's logout, an admin, a password change, a deactivation); the security log keeps its issue and revocation.
    `client` names the device or system it was issued to: a new login from the same client replaces that client's
    token, so a tablet and a lab interface of one user hold separate tokens."""

    id = models.BigAutoField(primary_key=True)  # a short id for the admin and the security log (not the digest)
    digest = models.CharField(max_length=128, unique=True)
    client = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["user", "client"])]

    def __str__(self) -> str:
        return f"API token {self.pk} of {self.user_id} ({self.client or 'unnamed client'})"
