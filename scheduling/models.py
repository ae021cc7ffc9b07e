"""The plan and what was done: courses, dose slots, evaluations, administrations, holds and overrides."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from il2ward.models import Patient, Signature
from monitoring.models import RuleSetVersion


class Course(models.Model):
    class Status(models.TextChoices):
        SCHEDULING = "scheduling", "Scheduling"  # created; the calendar task has not written the slots yet
        PLANNED = "planned", "Planned"
        ACTIVE = "active", "Active"
        REST = "rest", "Rest days"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    OPEN_STATUSES = (Status.SCHEDULING, Status.PLANNED, Status.ACTIVE, Status.REST)

    class WeightSource(models.TextChoices):
        ACTUAL = "actual", "Actual"
        ADMISSION = "admission", "Admission"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    regimen = models.CharField(max_length=32, default="hd-il2")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULING)
    dosing_weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    dosing_weight_source = models.CharField(max_length=16, choices=WeightSource.choices, default=WeightSource.ACTUAL)
    baseline_weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    dose_iu = models.PositiveBigIntegerField(help_text="SCH-DOSE: 600,000 IU × dosing weight; never reduced.")
    first_dose_at = models.DateTimeField()
    cycle2_first_at = models.DateTimeField(help_text="SCH-CYCLE2: day 15 unless an oncologist moved it later.")
    rule_set = models.ForeignKey(RuleSetVersion, on_delete=models.PROTECT, related_name="courses")
    oncologist = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="courses")
    eligibility_items = models.JSONField(default=dict, blank=True)
    eligibility_signature = models.OneToOneField(
        Signature, null=True, blank=True, on_delete=models.PROTECT, related_name="attested_course"
    )
    # INV-PLAUSIBLE: a dosing or baseline weight far from the latest measured weight, confirmed with a reason.
    weight_confirmed_reason = models.TextField(blank=True)
    # INV-DISC: the first evaluation with a `discontinue` finding blocks every later slot; nothing clears it.
    discontinued_at = models.DateTimeField(null=True, blank=True)
    discontinued_by = models.ForeignKey(
        "DoseEvaluation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discharge_date = models.DateField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()
    scheduled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_dose_at", "pk"]
        constraints = [
            # The database backs up the service's 409 active_course_exists.
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status__in=["scheduling", "planned", "active", "rest"]),
                name="one_open_course_per_patient",
            ),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"Course {self.pk}"

    @property
    def eligibility_attested(self) -> bool:
        return self.eligibility_signature_id is not None


class Dose(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        GIVEN = "given", "Given"
        HELD = "held", "Held"
        MISSED = "missed", "Missed"
        CANCELLED = "cancelled", "Cancelled"

    class Flag(models.TextChoices):
        NONE = "", "None"
        HOLD = "hold", "Hold"
        STOP = "stop", "Stop"
        DISCONTINUE = "discontinue", "Discontinue"
        INCOMPLETE = "incomplete", "Incomplete"

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="doses")
    cycle = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    flag = models.CharField(max_length=16, choices=Flag.choices, default=Flag.NONE, blank=True)
    latest_evaluation = models.ForeignKey(
        "DoseEvaluation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["course", "cycle", "number"]
        constraints = [models.UniqueConstraint(fields=["course", "cycle", "number"], name="dose_slot_unique")]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            # The board's per-course reads (scheduling/selectors/board.py): the open slot, the last charted one and
            # the given and held counts, each a probe of one course's slots in one status.
            models.Index(fields=["course", "status", "due_at"], name="dose_course_status_due"),
        ]

    def __str__(self) -> str:
        return f"C{self.cycle}D{self.number}"

    @property
    def label(self) -> str:
        return f"Cycle {self.cycle} · dose {self.number}"


class DoseEvaluation(models.Model):
    """One pre-dose evaluation, stored with the rule set and input ids so it can always be explained again."""

    class Decision(models.TextChoices):
        GIVE = "give", "Give"
        HOLD = "hold", "Hold"
        STOP = "stop", "Stop"
        DISCONTINUE = "discontinue", "Discontinue"
        INCOMPLETE = "incomplete", "Incomplete"

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="evaluations")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    findings = models.JSONField(default=list)
    missing = models.JSONField(default=list)
    grades = models.JSONField(default=dict)
    measures = models.JSONField(default=dict, help_text="Derived values shown with it: weight gain %, urine 8 h.")
    observations_used = models.JSONField(default=list)
    rule_set = models.ForeignKey(RuleSetVersion, on_delete=models.PROTECT, related_name="+")
    evaluated_at = models.DateTimeField()
    # The clinical time it was evaluated for: evaluated_at, or the infusion's start when charting (INV-START).
    as_of = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=32, default="manual")

    class Meta:
        ordering = ["-evaluated_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.decision} @ {self.evaluated_at:%Y-%m-%d %H:%M}Z"


class Administration(models.Model):
    """A dose charted as given. Corrections mark it entered-in-error; the row is never deleted or edited otherwise."""

    class Timing(models.TextChoices):
        EARLY = "early", "Early"
        ON_TIME = "on_time", "On time"
        LATE = "late", "Late"

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="administrations")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    dose_iu = models.PositiveBigIntegerField()
    dosing_weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    dosing_weight_source = models.CharField(max_length=16)
    given_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    vial_lot = models.CharField(max_length=64, blank=True)
    reconstituted_at = models.DateTimeField(null=True, blank=True)
    timing = models.CharField(max_length=16, choices=Timing.choices)
    early_reason = models.TextField(
        blank=True, help_text="Why it was started more than the on-time margin before due (confirmed by the nurse)."
    )
    evaluation = models.ForeignKey(DoseEvaluation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    charted_at = models.DateTimeField()
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entered_in_error_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "pk"]
        constraints = [
            # Backs up the row lock: at most one standing administration per dose.
            models.UniqueConstraint(
                fields=["dose"], condition=Q(entered_in_error_at__isnull=True), name="one_administration_per_dose"
            )
        ]

    def __str__(self) -> str:
        return f"Administration {self.pk}"


class DoubleCheck(models.Model):
    """A pending blind double check: the first nurse has charted the give, the second nurse confirms it from her own
    signed-in session (her dose, calculated from the order) or refuses it with a reason. Never deleted.

    It is open until the dose's window closes (`expires_at` = due + W, SCH-WINDOW): after that the slot cannot be
    given anyway, and the sweep marks it expired (scheduling.services.double_checks.double_checks_expire). After
    IL2WARD_DOUBLE_CHECK_MAX_MISMATCHES doses typed that do not match, it is closed as refused. Accepting charts the
    administration through the same locked, as-of-start path as a co-signed give (HOLD-RULES §3a INV-START)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the second nurse"
        ACCEPTED = "accepted", "Checked and given"
        REFUSED = "refused", "Refused by the second nurse"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired (the dose's window closed)"

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="double_checks")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # What the first nurse charted; the administration is written from these when the check matches.
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    vial_lot = models.CharField(max_length=64, blank=True)
    reconstituted_at = models.DateTimeField(null=True, blank=True)
    early_reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    refused_reason = models.TextField(blank=True)
    mismatches = models.PositiveSmallIntegerField(default=0, help_text="Doses typed by a checker that did not match.")
    administration = models.OneToOneField(
        "Administration", null=True, blank=True, on_delete=models.PROTECT, related_name="double_check"
    )

    class Meta:
        ordering = ["requested_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["dose"], condition=Q(status="pending"), name="one_pending_check_per_dose")
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"Double check {self.pk}"


class Hold(models.Model):
    """A dose held: by a nurse or oncologist with a coded reason, or recorded by the sweep at due + W (rule ids)."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="holds")
    reason = models.CharField(max_length=64, help_text="A rule id (CV-SBP …) or another coded reason.")
    rule_ids = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    automatic = models.BooleanField(default=False)
    evaluation = models.ForeignKey(DoseEvaluation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # A mistaken hold marked entered-in-error returns the slot to open; the row stays (nothing clinical is deleted).
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entered_in_error_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["dose"], condition=Q(entered_in_error_at__isnull=True), name="one_hold_per_dose"
            )
        ]

    def __str__(self) -> str:
        return f"Hold {self.reason}"


class Override(models.Model):
    """An oncologist's e-signed override of a `hold` decision for one slot (never a `stop`)."""

    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="overrides")
    evaluation = models.ForeignKey(DoseEvaluation, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    # The hold findings it was signed against (rule, value, measure, worse): INV-OVR lifts only these, at the same
    # or less severe values.
    covers = models.JSONField(default=list)
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    # Set by the first later evaluation it no longer covers (INV-OVR); a lapsed override never applies again.
    lapsed_at = models.DateTimeField(null=True, blank=True)
    lapsed_by = models.ForeignKey(DoseEvaluation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            # One override per evaluation: concurrent or repeated signatures for what the oncologist saw once.
            models.UniqueConstraint(fields=["evaluation"], name="override_one_per_evaluation"),
        ]

    def __str__(self) -> str:
        return f"Override {self.pk}"


class CycleDecision(models.Model):
    """After a `stop` recommendation the oncologist records continue or stop for the cycle (e-signed)."""

    class Choice(models.TextChoices):
        CONTINUE = "continue", "Continue the cycle"
        STOP = "stop", "Stop the cycle"

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="cycle_decisions")
    cycle = models.PositiveSmallIntegerField()
    dose = models.ForeignKey(Dose, on_delete=models.PROTECT, related_name="+")
    evaluation = models.ForeignKey(DoseEvaluation, on_delete=models.PROTECT, related_name="+")
    choice = models.CharField(max_length=16, choices=Choice.choices)
    reason = models.TextField()
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"Cycle {self.cycle}: {self.choice}"


class RetreatmentBar(models.Model):
    """A retreatment-bar event (HOLD-RULES §4) recorded on a course: every later course is refused (SCH-RETREAT)."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="retreatment_bars")
    kind = models.CharField(max_length=64)
    source = models.CharField(max_length=64, help_text="The observation it came from, e.g. event:12 or vitals:8.")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]
        constraints = [models.UniqueConstraint(fields=["course", "kind", "source"], name="retreatment_bar_unique")]

    def __str__(self) -> str:
        return self.kind


class TeachingRecord(models.Model):
    """The patient-teaching checklist of HOLD-RULES §5, documented once per course (a correction is a new row)."""

    ITEMS = (
        ("infection_risk", "Infection risk; report fever, cough or shortness of breath"),
        ("report_symptoms", "Report chest pain, irregular or fast heartbeat, bruising or bleeding, abdominal pain"),
        ("meals_fluids", "Small frequent meals and fluids"),
        ("dietitian", "Dietitian referral if needed"),
        ("tests_during_therapy", "Blood tests and chest X-rays during therapy"),
    )

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="teaching_records")
    items = models.JSONField(default=dict)
    note = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"Teaching for course {self.course_id}"


class AdverseEvent(models.Model):
    """An adverse event with its CTCAE term and grade, linked to the doses it caused to be held."""

    class Category(models.TextChoices):
        CNS = "cns", "CNS"
        CARDIOVASCULAR = "cardiovascular", "Cardiovascular"
        GI = "gi", "Gastrointestinal"
        RENAL = "renal", "Renal"
        HAEMATOLOGICAL = "haematological", "Haematological"
        HEPATIC = "hepatic", "Hepatic"
        METABOLIC = "metabolic", "Metabolic"
        RESPIRATORY = "respiratory", "Respiratory"
        SKIN = "skin", "Skin"

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="adverse_events")
    category = models.CharField(max_length=32, choices=Category.choices)
    term = models.CharField(max_length=200, help_text="CTCAE term, e.g. Hypotension")
    grade = models.PositiveSmallIntegerField(choices=[(g, f"Grade {g}") for g in range(1, 6)])
    onset_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    held_doses = models.ManyToManyField(Dose, blank=True, related_name="adverse_events")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    entered_in_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["onset_at", "pk"]

    def __str__(self) -> str:
        return f"{self.term} G{self.grade}"


class ResponseAssessment(models.Model):
    """The response assessment after a course (~28 days after it ends, SCH-RETREAT), e-signed."""

    class Response(models.TextChoices):
        CR = "CR", "Complete response"
        PR = "PR", "Partial response"
        SD = "SD", "Stable disease"
        PD = "PD", "Progressive disease"
        NE = "NE", "Not evaluable"

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="response_assessments")
    assessed_on = models.DateField()
    response = models.CharField(max_length=2, choices=Response.choices)
    note = models.TextField(blank=True)
    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-assessed_on", "-pk"]

    def __str__(self) -> str:
        return f"{self.response} on {self.assessed_on}"
