"""The nurse's forms. Times are typed in ward-local time (datetime-local inputs) and read in the ward's zone.

The forms only parse; the services validate the clinical ranges and their Invalid errors land on the fields here
(`apply_errors`), so a page and the API refuse the same input with the same words.
"""

from datetime import datetime, timedelta

from django import forms

from il2ward.forms import ConfirmImplausible, apply_errors  # noqa: F401 - the views' one way to show a refusal
from monitoring.domain.rulesets import RULE_CATALOGUE
from monitoring.domain.snapshot import EVENT_KINDS
from monitoring.models import LAB_FIELDS, BedsideExam, LabResult, NeuroAssessment, VitalSigns
from scheduling.domain.calendar import to_local_aware
from scheduling.models import TeachingRecord

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# Shown and typed as 24-hour ward time whatever the browser's locale (a datetime-local input shows 12-hour
# times in a US-English browser); the ISO "T" form is read too.
DISPLAY_FORMAT = "%Y-%m-%d %H:%M"


def local_input(moment: datetime | None, zone) -> str:
    """An aware time as the value of a ward-time input, in the ward's zone."""
    return "" if moment is None else moment.astimezone(zone).strftime(DISPLAY_FORMAT)


class LocalDateTimeField(forms.Field):
    """A ward-local wall-clock time, typed as 24-hour "YYYY-MM-DD HH:MM"; the form makes it aware in the ward's zone
    (scheduling.domain.calendar.to_local_aware: a DST-gap time moves forward, an ambiguous one takes the first)."""

    widget = forms.DateTimeInput(
        attrs={
            "placeholder": "YYYY-MM-DD HH:MM",
            "pattern": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}",
            "inputmode": "numeric",
            "autocomplete": "off",
            "title": "24-hour ward time, e.g. 2027-03-10 06:00",
        },
        format=DISPLAY_FORMAT,
    )
    default_error_messages = {"invalid": "Enter a date and 24-hour time (ward time), e.g. 2027-03-10 06:00."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        for fmt in (LOCAL_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                return datetime.strptime(str(value).strip(), fmt)  # noqa: DTZ007 - naive on purpose: ward-local
            except ValueError:
                continue
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


class WardForm(forms.Form):
    """A form whose LocalDateTimeFields are read in `zone`."""

    def __init__(self, *args, zone, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        for name, field in self.fields.items():
            if isinstance(field, LocalDateTimeField):
                if isinstance(self.initial.get(name), datetime) and self.initial[name].tzinfo is not None:
                    self.initial[name] = local_input(self.initial[name], zone)

    def clean(self):
        data = super().clean()
        for name, field in self.fields.items():
            value = data.get(name)
            if isinstance(field, LocalDateTimeField) and isinstance(value, datetime) and value.tzinfo is None:
                data[name] = to_local_aware(value, self.zone)
        return data


def _int(label, **kwargs):
    return forms.IntegerField(label=label, widget=forms.NumberInput(attrs={"inputmode": "numeric"}), **kwargs)


def _dec(label, **kwargs):
    return forms.DecimalField(label=label, widget=forms.NumberInput(attrs={"step": "any"}), **kwargs)


RASS_CHOICES = [
    ("", "— choose —"),
    (4, "+4 Combative"),
    (3, "+3 Very agitated"),
    (2, "+2 Agitated"),
    (1, "+1 Restless"),
    (0, "0 Alert and calm"),
    (-1, "−1 Drowsy"),
    (-2, "−2 Light sedation"),
    (-3, "−3 Moderate sedation"),
    (-4, "−4 Deep sedation"),
    (-5, "−5 Unarousable"),
]


def yes_no(label: str, help_text: str = "") -> forms.TypedChoiceField:
    """An answer the nurse chooses (INV-EXPLICIT): yes or no, never a checkbox whose blank reads as "no"; untouched,
    the form refuses to save it."""
    return forms.TypedChoiceField(
        label=label,
        choices=[("no", "No"), ("yes", "Yes")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect(attrs={"class": "yes-no"}),
        help_text=help_text,
    )


EXAM_LABELS = {
    "resting_dyspnea": "Dyspnoea at rest",
    "intubated": "Intubated",
    "ileus_distension": "Ileus or abdominal distension",
    "vomiting_refractory": "Vomiting not responding to drugs",
    "distension_affects_breathing": "Distension affecting breathing",
    "abdominal_pain_severe": "Severe unrelenting abdominal pain",
    "extreme_tightness": "Extreme muscle tightness",
    "extreme_paresthesias": "Extreme paraesthesias",
    "moist_desquamation": "Moist desquamation",
}


class AssessmentForm(ConfirmImplausible, WardForm):
    """Everything the pre-dose rules read (HOLD-RULES §3) in one go, every INV-EXPLICIT input an explicit answer:
    rhythm, O2 (0 L/min on room air) and pressors (0 / none) in the vitals; the four neuro yes/no answers; the
    bedside exam as one compact block of yes/no choices."""

    recorded_at = LocalDateTimeField(label="Assessed at (ward time)")
    sbp = _int("Systolic BP (mmHg)")
    dbp = _int("Diastolic BP (mmHg)")
    heart_rate = _int("Heart rate (/min)", help_text="After fever/BP corrected.")
    resp_rate = _int("Resp. rate (/min)")
    spo2 = _int("SpO2 (%)")
    temp_c = _dec("Temperature (°C)")
    rhythm = forms.ChoiceField(label="Rhythm", choices=[("", "— choose —"), *VitalSigns.Rhythm.choices])
    phenylephrine_mcg_kg_min = _dec("Phenylephrine (µg/kg/min)", help_text="0 when none is running.")
    other_pressor = forms.ChoiceField(
        label="Other vasopressor", choices=[("", "— choose —"), *VitalSigns.OtherPressor.choices]
    )
    other_pressor_mcg_kg_min = _dec(
        "Its rate (µg/kg/min)", required=False, help_text="Dopamine, norepinephrine, epinephrine; not vasopressin."
    )
    o2_lpm = _dec("O2 flow (L/min)", required=False, help_text="0 on room air; or give the FiO2 by mask.")
    fio2_pct = _int("FiO2 by mask (%)", required=False)
    rass = forms.TypedChoiceField(label="RASS", choices=RASS_CHOICES, coerce=int)
    confusion = forms.ChoiceField(
        label="Confusion / agitation", choices=[("", "— choose —"), *NeuroAssessment.Confusion.choices]
    )
    neuro_check_failed = yes_no("Fails serial 7s or 'WORLD' backward", "Neuro check (NE-CHECK).")
    hallucinations = yes_no("Hallucinations")
    vivid_dreams_or_anxiety = yes_no("Vivid dreams or mild anxiety")
    persistent_crying = yes_no("Persistent crying")
    rales = forms.ChoiceField(label="Rales", choices=[("", "— choose —"), *BedsideExam.Rales.choices])
    # the bedside exam (HOLD-RULES §3 RS-EXAM, GI-EXAM, MS-EXAM, SK-DESQ)
    resting_dyspnea = yes_no(EXAM_LABELS["resting_dyspnea"])
    intubated = yes_no(EXAM_LABELS["intubated"])
    ileus_distension = yes_no(EXAM_LABELS["ileus_distension"])
    vomiting_refractory = yes_no(EXAM_LABELS["vomiting_refractory"])
    distension_affects_breathing = yes_no(EXAM_LABELS["distension_affects_breathing"])
    abdominal_pain_severe = yes_no(EXAM_LABELS["abdominal_pain_severe"])
    extreme_tightness = yes_no(EXAM_LABELS["extreme_tightness"])
    extreme_paresthesias = yes_no(EXAM_LABELS["extreme_paresthesias"])
    moist_desquamation = yes_no(EXAM_LABELS["moist_desquamation"])
    urine_since = LocalDateTimeField(label="Urine measured since (ward time)", required=False)
    urine_ml = _int("Urine (mL)", required=False, help_text="Not needed before a cycle's first dose.")
    weight_kg = _dec("Weight today (kg)", required=False)

    VITALS = (
        "sbp",
        "dbp",
        "heart_rate",
        "resp_rate",
        "spo2",
        "temp_c",
        "rhythm",
        "phenylephrine_mcg_kg_min",
        "other_pressor",
        "other_pressor_mcg_kg_min",
    )
    VITALS_O2 = ("o2_lpm", "fio2_pct")
    NEURO = (
        "rass",
        "confusion",
        "neuro_check_failed",
        "hallucinations",
        "vivid_dreams_or_anxiety",
        "persistent_crying",
    )
    EXAM = ("rales", *EXAM_LABELS)

    def clean(self):
        data = super().clean()
        if data.get("o2_lpm") is None and data.get("fio2_pct") is None and not self.has_error("o2_lpm"):
            self.add_error("o2_lpm", "Chart the O2: 0 L/min on room air, or the FiO2 by mask.")
        return data

    def __init__(self, *args, weight_missing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if weight_missing:
            self.fields["weight_kg"].help_text = "No weight in the last 24 h: weigh the patient (FL-WT)."
            self.fields["weight_kg"].widget.attrs["class"] = "border-warning"

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        vitals = {name: data.get(name) for name in self.VITALS + self.VITALS_O2}
        vitals["rhythm"] = vitals["rhythm"] or None
        return {
            "recorded_at": data["recorded_at"],
            "vitals": vitals,
            "neuro": {name: data.get(name) for name in self.NEURO},
            "exam": {name: data.get(name) for name in self.EXAM},
            "urine_ml": data.get("urine_ml"),
            "urine_since": data.get("urine_since"),
            "weight_kg": data.get("weight_kg"),
            **self.confirmation(),
        }


class UnfilledTextInput(forms.TextInput):
    """A text input never filled back in after an error: the second nurse's figure is typed afresh each time."""

    def format_value(self, value):
        return None


class DoseIUField(forms.CharField):
    """A dose in IU typed by the second nurse: digits, with spaces, commas or dots as thousands separators."""

    def clean(self, value):
        value = super().clean(value)  # the text, length-checked
        if value in self.empty_values:
            return None
        digits = value.replace(",", "").replace(" ", "").replace(".", "").replace("\u202f", "")
        if not digits.isdigit():
            raise forms.ValidationError("Type the dose in whole IU, e.g. 48000000.")
        return int(digits)


class GiveForm(WardForm):
    """Chart a dose as given: times, the preparation record and the second nurse's blind double check.

    The second nurse's section never shows the prescribed dose: she types the dose she calculated herself.
    """

    started_at = LocalDateTimeField(label="Infusion started (ward time)")
    ended_at = LocalDateTimeField(label="Infusion ended (ward time)", required=False)
    vial_lot = forms.CharField(label="Vial lot number", max_length=64)
    reconstituted_at = LocalDateTimeField(
        label="Reconstituted at (ward time)", help_text="Give within 48 h of reconstitution (SCH-PREP)."
    )
    verifier = forms.CharField(
        label="Second nurse: username",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
    verifier_password = forms.CharField(
        label="Second nurse: password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    verified_dose_iu = DoseIUField(
        label="Second nurse: dose she calculated (IU)",
        max_length=20,
        widget=UnfilledTextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text="Typed independently from the order and the label.",
    )
    # Asked only when the start is more than the on-time margin before due (the service says so).
    early_reason = forms.CharField(
        label="Why it is given early", required=False, max_length=500, widget=forms.HiddenInput
    )

    SECOND_NURSE = ("verifier", "verifier_password", "verified_dose_iu")


OTHER_HOLD_REASONS = [
    ("patient_declined", "Patient declined"),
    ("no_iv_access", "No IV access"),
    ("drug_unavailable", "Drug not available"),
    ("off_ward", "Patient off the ward"),
    ("oncologist_order", "Oncologist's order"),
    ("other", "Other (say why in the note)"),
]


class HoldForm(forms.Form):
    reason = forms.ChoiceField(label="Reason (rule id or code)")
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    confirm_hold = forms.BooleanField(
        label="Hold it: this dose will not be given, and a held dose is never made up",
        error_messages={"required": "Tick to confirm the hold."},
    )

    def __init__(self, *args, rules=(), **kwargs):
        super().__init__(*args, **kwargs)
        found = [(rule, f"{rule} — {RULE_CATALOGUE[rule].title}") for rule in rules if rule in RULE_CATALOGUE]
        others = [(r, f"{r} — {info.title}") for r, info in RULE_CATALOGUE.items() if r not in rules]
        self.fields["reason"].choices = [
            ("", "— choose —"),
            *([("This evaluation", found)] if found else []),
            ("Other rules", others),
            ("Other reasons", OTHER_HOLD_REASONS),
        ]
        if found and not self.is_bound:
            self.initial.setdefault("reason", found[0][0])

    def clean(self):
        data = super().clean()
        if data.get("reason") == "other" and not (data.get("note") or "").strip():
            self.add_error("note", "Say why the dose is held.")
        return data


class HoldUndoForm(forms.Form):
    """A mistaken hold marked entered-in-error while the window is open: the slot is open again."""

    hold = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Why the hold was a mistake", max_length=500)


class CorrectionForm(forms.Form):
    """Entered-in-error: the record stays in the history, marked; the password is asked again (e-signature)."""

    administration = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Why is this entry wrong?", widget=forms.Textarea(attrs={"rows": 2}))
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


def last_shift(now: datetime, zone, starts=(7, 15, 23)) -> tuple[datetime, datetime]:
    """The last complete 8 h nursing shift before `now`, in the ward's zone (default for the fluids form)."""
    local = now.astimezone(zone)
    candidates = []
    for days in (0, 1):
        day = (local - timedelta(days=days)).date()
        for hour in starts:
            end = to_local_aware(datetime(day.year, day.month, day.day, hour), zone)  # noqa: DTZ001 - ward-local
            if end <= now:
                candidates.append(end)
    end = max(candidates)
    return end - timedelta(hours=8), end


class FluidsForm(ConfirmImplausible, WardForm):
    period_start = LocalDateTimeField(label="Shift start (ward time)")
    period_end = LocalDateTimeField(label="Shift end (ward time)")
    urine_ml = _int("Urine output (mL)")
    intake_ml = _int("Intake (mL)", required=False)
    diarrhea_ml = _int("Diarrhoea (mL)", required=False)


def _lab_label(name: str) -> str:
    field = LabResult._meta.get_field(name)
    label = str(field.verbose_name)
    if label == name.replace("_", " "):  # no verbose name: build one from the column name
        parts = name.split("_")
        units = {"mg_dl": "mg/dL", "mmol_l": "mmol/L", "g_dl": "g/dL", "u_l": "U/L", "ng_l": "ng/L", "k_ul": "×10³/µL"}
        unit = units.get("_".join(parts[-2:]), "")
        label = f"{' '.join(parts[:-2]).capitalize()} ({unit})" if unit else label.capitalize()
    return label[0].upper() + label[1:]


class LabsForm(WardForm):
    recorded_at = LocalDateTimeField(label="Specimen taken at (ward time)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in LAB_FIELDS:
            self.fields[name] = _dec(_lab_label(name), required=False)


class EventForm(WardForm):
    kind = forms.ChoiceField(
        label="Clinical event",
        choices=[("", "— choose —")] + [(k, k.replace("_", " ").capitalize()) for k in EVENT_KINDS],
    )
    recorded_at = LocalDateTimeField(label="Observed at (ward time)")
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))


class TeachingForm(forms.Form):
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, label in TeachingRecord.ITEMS:
            self.fields[key] = forms.BooleanField(label=label, required=False)
        self.order_fields([key for key, _ in TeachingRecord.ITEMS] + ["note"])

    def items(self) -> dict:
        return {key: bool(self.cleaned_data.get(key)) for key, _ in TeachingRecord.ITEMS}
