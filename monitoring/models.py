"""What the patient's observations say. The rule engine itself is pure (monitoring/domain).

Observations are never edited or deleted: a wrong entry is marked entered-in-error (who, when, why) and a new row is
recorded. Every reader of clinical data filters ``entered_in_error_at__isnull=True`` (see monitoring/selectors.py).
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from il2ward.models import Patient
from monitoring.domain.snapshot import EVENT_KINDS, LAB_NAMES


class RuleSetVersion(models.Model):
    """A versioned rule set as data: a base set (consensus-2014, label-only) plus a site's threshold overrides.

    Never edited in place: a site change is a new version, so every stored evaluation can still name the exact
    thresholds that made it.
    """

    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    base = models.CharField(max_length=64)
    overrides = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    definition = models.JSONField(
        encoder=DjangoJSONEncoder, help_text="The complete rule set (rules, thresholds, options) as evaluated."
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="ruleset_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def _label(code: str) -> str:
    return code.replace("_", " ").capitalize()


class Observation(models.Model):
    """Fields every observation has. ``KIND`` is its name in URLs, audit actions and source ids ("vitals:12")."""

    KIND: ClassVar[str] = ""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT)
    recorded_at = models.DateTimeField(help_text="When the observation was made (clinical time, aware UTC).")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(help_text="When it was entered.")
    entered_in_error_at = models.DateTimeField(null=True, blank=True)
    entered_in_error_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    entered_in_error_reason = models.TextField(blank=True)
    # Set when a hospital system sent the value (inbound HL7 v2 / FHIR); blank when it was charted by hand.
    source_system = models.CharField(max_length=64, blank=True, default="", help_text="e.g. LAB, MONITOR.")
    source_message_id = models.CharField(
        max_length=128, blank=True, default="", help_text="The sender's message id (HL7 MSH-10, FHIR identifier)."
    )
    source_order = models.CharField(
        max_length=128, blank=True, default="", help_text="The sender's order/result id a later correction names."
    )

    class Meta:
        abstract = True
        ordering = ["-recorded_at", "-pk"]
        get_latest_by = "recorded_at"

    @property
    def source_id(self) -> str:
        return f"{self.KIND}:{self.pk}"

    @property
    def in_error(self) -> bool:
        return self.entered_in_error_at is not None

    @property
    def source_label(self) -> str:
        """ "from LAB", "from monitor": where an interfaced value came from; blank when charted by hand."""
        if not self.source_system:
            return ""
        name = self.source_system
        return f"from {name.lower() if name.upper() == 'MONITOR' else name}"


class VitalSigns(Observation):
    KIND = "vitals"

    # The choices match the rule engine's snapshot.RHYTHMS / CONFUSION_LEVELS (a test checks it).

    class Rhythm(models.TextChoices):
        SINUS = "sinus", "Sinus"
        AF = "af", "Atrial fibrillation"
        SVT = "svt", "SVT"
        BRADY_TREATED = "brady_treated", "Bradycardia needing treatment"
        PVC_FREQUENT = "pvc_frequent", "Frequent PVCs"
        BIGEMINY = "bigeminy", "Bigeminy"
        NSVT = "nsvt", "Non-sustained VT"
        VT_SUSTAINED = "vt_sustained", "Sustained VT (≥ 5 beats)"
        OTHER = "other", "Other"

    sbp = models.PositiveSmallIntegerField("systolic BP (mmHg)")
    dbp = models.PositiveSmallIntegerField("diastolic BP (mmHg)")
    heart_rate = models.PositiveSmallIntegerField("heart rate (/min)")
    resp_rate = models.PositiveSmallIntegerField("respiratory rate (/min)")
    spo2 = models.PositiveSmallIntegerField("SpO2 (%)")
    temp_c = models.DecimalField("temperature (°C)", max_digits=4, decimal_places=1)
    o2_lpm = models.DecimalField("O2 flow (L/min)", max_digits=3, decimal_places=1, null=True, blank=True)
    fio2_pct = models.PositiveSmallIntegerField("FiO2 (%)", null=True, blank=True)
    rhythm = models.CharField(max_length=16, choices=Rhythm.choices, blank=True, help_text="Blank: not charted.")

    class OtherPressor(models.TextChoices):
        NONE = "none", "None"
        DOPAMINE = "dopamine", "Dopamine"
        NOREPINEPHRINE = "norepinephrine", "Norepinephrine"
        VASOPRESSIN = "vasopressin", "Vasopressin"
        EPINEPHRINE = "epinephrine", "Epinephrine"

    # Null / blank: not charted, which the pre-dose rules read as missing (HOLD-RULES §3a INV-EXPLICIT); 0 / "none"
    # is the charted answer "none".
    phenylephrine_mcg_kg_min = models.DecimalField(
        "phenylephrine (µg/kg/min)", max_digits=4, decimal_places=2, null=True, blank=True
    )
    other_pressor = models.CharField(
        "other vasopressor", max_length=16, choices=OtherPressor.choices, blank=True, help_text="Blank: not charted."
    )
    other_pressor_mcg_kg_min = models.DecimalField(
        "other vasopressor rate (µg/kg/min)", max_digits=5, decimal_places=2, null=True, blank=True
    )

    class Meta(Observation.Meta):
        verbose_name = "vital signs"
        verbose_name_plural = "vital signs"
        indexes = [models.Index(fields=["patient", "recorded_at"], name="vitals_patient_recorded")]

    def __str__(self) -> str:
        return f"Vitals {self.pk}"

    @property
    def map(self) -> int:
        """Mean arterial pressure, (SBP + 2 × DBP) / 3, rounded half up to a whole mmHg."""
        return int((Decimal(self.sbp + 2 * self.dbp) / 3).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class NeuroAssessment(Observation):
    KIND = "neuro"

    class Confusion(models.TextChoices):
        NONE = "none", "None"
        MILD = "mild", "Mild"
        MODERATE = "moderate", "Moderate"
        SEVERE = "severe", "Severe"

    rass = models.SmallIntegerField("RASS", help_text="Richmond Agitation-Sedation Scale, −5..4.")
    confusion = models.CharField(max_length=16, choices=Confusion.choices)
    # Null: not answered, read as missing (INV-EXPLICIT), never as "no".
    neuro_check_failed = models.BooleanField(null=True, help_text="Fails serial 7s or 'WORLD' backward.")
    hallucinations = models.BooleanField(null=True)
    vivid_dreams_or_anxiety = models.BooleanField(null=True)
    persistent_crying = models.BooleanField(null=True)

    class Meta(Observation.Meta):
        verbose_name = "neuro assessment"
        indexes = [models.Index(fields=["patient", "recorded_at"], name="neuro_patient_recorded")]

    def __str__(self) -> str:
        return f"Neuro {self.pk}"


class BedsideExam(Observation):
    """The bedside exam charted with every pre-dose assessment (HOLD-RULES §3 RS-EXAM, GI-EXAM, MS-EXAM, SK-DESQ).

    Every answer is required when it is charted; the rules read a missing or stale exam as ``incomplete``."""

    KIND = "exam"

    class Rales(models.TextChoices):
        NONE = "none", "None"
        LOWER_THIRD = "lower_third", "Up to ⅓ of the chest"
        HALF_OR_MORE = "half_or_more", "½ of the chest or more"

    resting_dyspnea = models.BooleanField("dyspnoea at rest")
    rales = models.CharField(max_length=16, choices=Rales.choices)
    intubated = models.BooleanField()
    ileus_distension = models.BooleanField("ileus or abdominal distension")
    vomiting_refractory = models.BooleanField("vomiting not responding to drugs")
    distension_affects_breathing = models.BooleanField("distension affecting breathing")
    abdominal_pain_severe = models.BooleanField("severe unrelenting abdominal pain")
    extreme_tightness = models.BooleanField("extreme muscle tightness")
    extreme_paresthesias = models.BooleanField("extreme paraesthesias")
    moist_desquamation = models.BooleanField("moist desquamation")

    class Meta(Observation.Meta):
        verbose_name = "bedside exam"
        indexes = [models.Index(fields=["patient", "recorded_at"], name="exam_patient_recorded")]

    def __str__(self) -> str:
        return f"Exam {self.pk}"


class WeightMeasurement(Observation):
    KIND = "weights"

    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    # An implausible value confirmed by the nurse (HOLD-RULES §3a INV-PLAUSIBLE): why, shown beside the value.
    confirmed_reason = models.TextField(blank=True)

    class Meta(Observation.Meta):
        verbose_name = "weight"
        indexes = [models.Index(fields=["patient", "recorded_at"], name="weights_patient_recorded")]

    def __str__(self) -> str:
        return f"Weight {self.pk}"


class FluidBalance(Observation):
    """Intake and output over ``[period_start, period_end]`` (usually one 8 h shift); recorded_at = period_end."""

    KIND = "fluids"

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    urine_ml = models.PositiveIntegerField()
    intake_ml = models.PositiveIntegerField(null=True, blank=True)
    diarrhea_ml = models.PositiveIntegerField(null=True, blank=True)
    confirmed_reason = models.TextField(blank=True)  # INV-PLAUSIBLE confirmation, as for weights

    class Meta(Observation.Meta):
        verbose_name = "fluid balance"
        indexes = [
            models.Index(fields=["patient", "recorded_at"], name="fluids_patient_recorded"),
            models.Index(fields=["patient", "period_end"], name="fluids_patient_period_end"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(period_end__gt=models.F("period_start")), name="fluids_period")
        ]

    def __str__(self) -> str:
        return f"Fluids {self.pk}"


class LabResult(Observation):
    """One panel; a column is null when the panel did not include that test. recorded_at = specimen time."""

    KIND = "labs"

    creatinine_mg_dl = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    platelets_k_ul = models.DecimalField("platelets (×10³/µL)", max_digits=5, decimal_places=1, null=True, blank=True)
    bilirubin_mg_dl = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    bicarbonate_mmol_l = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    ast_u_l = models.PositiveIntegerField("AST (U/L)", null=True, blank=True)
    alt_u_l = models.PositiveIntegerField("ALT (U/L)", null=True, blank=True)
    albumin_g_dl = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    potassium_mmol_l = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    magnesium_mg_dl = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    phosphate_mg_dl = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    sodium_mmol_l = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    hemoglobin_g_dl = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    wbc_k_ul = models.DecimalField("WBC (×10³/µL)", max_digits=5, decimal_places=2, null=True, blank=True)
    troponin_ng_l = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    ck_mb_ng_ml = models.DecimalField("CK-MB (ng/mL)", max_digits=6, decimal_places=1, null=True, blank=True)

    class Meta(Observation.Meta):
        verbose_name = "lab result"
        indexes = [
            models.Index(fields=["patient", "recorded_at"], name="labs_patient_recorded"),
            # The latest result of each test the rules read is one probe of its own index, even for a test a
            # patient's panels never contain (monitoring/selectors.py).
            *(
                models.Index(
                    fields=["patient", "recorded_at"],
                    condition=models.Q(**{f"{field}__isnull": False}),
                    name=f"labs_{name}_latest",
                )
                for field, name in LAB_NAMES.items()
            ),
        ]

    def __str__(self) -> str:
        return f"Labs {self.pk}"


LAB_FIELDS = (
    "creatinine_mg_dl",
    "platelets_k_ul",
    "bilirubin_mg_dl",
    "bicarbonate_mmol_l",
    "ast_u_l",
    "alt_u_l",
    "albumin_g_dl",
    "potassium_mmol_l",
    "magnesium_mg_dl",
    "phosphate_mg_dl",
    "sodium_mmol_l",
    "hemoglobin_g_dl",
    "wbc_k_ul",
    "troponin_ng_l",
    "ck_mb_ng_ml",
)


class ClinicalEvent(Observation):
    """A clinical flag (API.md events, plus the rule engine's volume_overload and new_irregular_rhythm).

    Active from ``recorded_at`` until ``resolved_at``. Retreatment-bar kinds bar later courses whether or not resolved.
    """

    KIND = "events"

    kind = models.CharField(max_length=40, choices=[(k, _label(k)) for k in EVENT_KINDS])
    note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta(Observation.Meta):
        verbose_name = "clinical event"
        indexes = [models.Index(fields=["patient", "recorded_at"], name="events_patient_recorded")]

    def __str__(self) -> str:
        return f"Event {self.pk} {self.kind}"


OBSERVATION_MODELS: dict[str, type[Observation]] = {
    m.KIND: m
    for m in (VitalSigns, NeuroAssessment, BedsideExam, WeightMeasurement, FluidBalance, LabResult, ClinicalEvent)
}
