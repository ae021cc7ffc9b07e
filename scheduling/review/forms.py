"""Forms of the course review: the oncologist's signed decisions and the adverse-event log.

A signed form asks for the signer's own password again (the e-signature) and states what signing means before the
button is pressed. Times are entered in the ward's local time, shown with the ward's zone.
"""

from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone

from il2ward.forms import ConfirmImplausible
from il2ward.models import Patient
from scheduling.domain.calendar import to_local_aware
from scheduling.domain.eligibility import ELIGIBILITY_ITEMS, ELIGIBILITY_LABELS
from scheduling.models import AdverseEvent, Course, CycleDecision, ResponseAssessment
from scheduling.services import decisions

# Common CTCAE v5 terms under IL-2, offered as suggestions (any term may be typed).
CTCAE_TERMS = {
    "cns": ("Somnolence", "Confusion", "Agitation", "Depressed level of consciousness", "Seizure", "Psychosis"),
    "cardiovascular": (
        "Hypotension",
        "Sinus tachycardia",
        "Atrial fibrillation",
        "Supraventricular tachycardia",
        "Ventricular tachycardia",
        "Myocardial infarction",
        "Capillary leak syndrome",
        "Edema limbs",
    ),
    "gi": ("Diarrhea", "Nausea", "Vomiting", "Mucositis oral", "Gastrointestinal hemorrhage"),
    "renal": ("Acute kidney injury", "Creatinine increased", "Urine output decreased"),
    "haematological": ("Platelet count decreased", "Anemia", "Neutrophil count decreased"),
    "hepatic": (
        "Blood bilirubin increased",
        "Alanine aminotransferase increased",
        "Aspartate aminotransferase increased",
    ),
    "metabolic": ("Acidosis", "Hypokalemia", "Hypomagnesemia", "Hypophosphatemia", "Hypocalcemia"),
    "respiratory": ("Dyspnea", "Hypoxia", "Pulmonary edema", "Pleural effusion"),
    "skin": ("Pruritus", "Rash maculo-papular", "Erythroderma", "Bullous dermatitis"),
}
LOCAL_INPUT = {"input_formats": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]}


def ward_local(value, zone):
    """A datetime-local entry read in the ward's zone (Django read it in the current zone); gaps move forward."""
    if value is None:
        return None
    return to_local_aware(timezone.make_naive(value, timezone.get_current_timezone()), zone)


def local_widget():
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ReviewForm(forms.Form):
    submit_label = "Save"
    submit_class = "btn-primary"

    def __init__(self, *args, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = action
        self.helper.form_class = "review-form"
        self.helper.add_input(Submit("submit", self.submit_label, css_class=self.submit_class))


class SignedForm(ReviewForm):
    """Ends with the password: re-entering it is the e-signature (il2ward.audit.sign)."""

    meaning = ""
    submit_label = "Sign"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"] = forms.CharField(
            label="Your password (e-signature)",
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        )


class EligibilityForm(SignedForm):
    meaning = "Eligibility for high-dose IL-2 attested"
    submit_label = "Sign eligibility"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        checks = {key: forms.BooleanField(label=ELIGIBILITY_LABELS[key], required=True) for key in ELIGIBILITY_ITEMS}
        self.fields = {**checks, "password": self.fields["password"]}

    def items(self) -> dict:
        return {key: self.cleaned_data[key] is True for key in ELIGIBILITY_ITEMS}


class OverrideForm(SignedForm):
    meaning = "Hold overridden for one dose"
    submit_label = "Sign override"
    submit_class = "btn-warning"
    reason = forms.CharField(label="Reason for giving this dose", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["reason", "password"])


class CycleDecisionForm(SignedForm):
    meaning = "Continue or stop the cycle after a stop recommendation"
    submit_label = "Sign decision"
    choice = forms.ChoiceField(label="Decision", choices=CycleDecision.Choice.choices, widget=forms.RadioSelect)
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["choice", "reason", "password"])


class StopCourseForm(SignedForm):
    meaning = "Course stopped"
    submit_label = "Sign: stop the course"
    submit_class = "btn-danger"
    reason = forms.CharField(label="Reason for stopping the course", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["reason", "password"])


class Cycle2Form(SignedForm):
    meaning = decisions.MEANING_CYCLE2_MOVE
    submit_label = "Sign: move cycle 2"
    first_local = forms.DateTimeField(label="Cycle 2 first dose (ward-local)", widget=local_widget(), **LOCAL_INPUT)
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, zone, **kwargs):
        self.zone = zone
        super().__init__(*args, **kwargs)
        self.order_fields(["first_local", "reason", "password"])

    def clean(self):
        data = super().clean()
        data["first_at"] = ward_local(data.get("first_local"), self.zone)
        return data


class DischargeForm(SignedForm):
    meaning = decisions.MEANING_DISCHARGE
    submit_label = "Sign discharge date"
    discharge_date = forms.DateField(label="Discharge date", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["discharge_date", "password"])


class ResponseForm(SignedForm):
    meaning = decisions.MEANING_RESPONSE
    submit_label = "Sign response assessment"
    assessed_on = forms.DateField(label="Assessed on", widget=forms.DateInput(attrs={"type": "date"}))
    response = forms.ChoiceField(label="Response", choices=ResponseAssessment.Response.choices)
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["assessed_on", "response", "note", "password"])


class AdverseEventForm(ReviewForm):
    submit_label = "Record adverse event"
    category = forms.ChoiceField(label="Category", choices=AdverseEvent.Category.choices)
    term = forms.CharField(
        label="CTCAE term", max_length=200, widget=forms.TextInput(attrs={"list": "ctcae-terms", "autocomplete": "off"})
    )
    grade = forms.TypedChoiceField(
        label="CTCAE grade", coerce=int, choices=[(g, f"Grade {g}") for g in range(1, 6)], initial=2
    )
    onset_local = forms.DateTimeField(label="Onset (ward-local)", widget=local_widget(), **LOCAL_INPUT)
    resolved_local = forms.DateTimeField(
        label="Resolved (ward-local, if resolved)", required=False, widget=local_widget(), **LOCAL_INPUT
    )
    held_doses = forms.TypedMultipleChoiceField(
        label="Doses it caused to be held",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, zone, held_doses, **kwargs):
        self.zone = zone
        super().__init__(*args, **kwargs)
        self.fields["held_doses"].choices = [
            (d.pk, f"{d.label} · {timezone.localtime(d.due_at, zone):%a %d %b %H:%M}") for d in held_doses
        ]
        if not held_doses:
            self.fields["held_doses"].help_text = "No held doses in this course."

    def clean(self):
        data = super().clean()
        data["onset_at"] = ward_local(data.get("onset_local"), self.zone)
        data["resolved_at"] = ward_local(data.get("resolved_local"), self.zone)
        return data


class EnteredInErrorForm(ReviewForm):
    submit_label = "Mark entered in error"
    submit_class = "btn-outline-danger btn-sm"
    reason = forms.CharField(label="Why is this entry wrong?", max_length=500)


class CourseForm(ConfirmImplausible):
    """An oncologist's new course. The first dose is entered in the ward's local time (the ward's zone is shown)."""

    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    first_dose_local = forms.DateTimeField(
        label="First dose (ward-local date and time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    dosing_weight_kg = forms.DecimalField(
        label="Dosing weight (kg)", max_digits=5, decimal_places=1, min_value=Decimal(20), max_value=Decimal(350)
    )
    dosing_weight_source = forms.ChoiceField(choices=Course.WeightSource.choices, initial="actual")
    baseline_weight_kg = forms.DecimalField(
        label="Baseline weight (kg)",
        max_digits=5,
        decimal_places=1,
        min_value=Decimal(20),
        max_value=Decimal(350),
        required=False,
        help_text="Weight before the course, for FL-WT weight gain. Defaults to the dosing weight.",
    )
    rule_set = forms.ChoiceField(
        choices=[("consensus-2014", "consensus-2014 (default)"), ("label-only", "label-only")],
        initial="consensus-2014",
    )

    def __init__(self, *args, patients, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = patients
        self.helper = FormHelper()
        self.helper.attrs = {
            "hx-post": "",
            "hx-trigger": "change delay:300ms, keyup changed delay:500ms from:#id_dosing_weight_kg",
            "hx-target": "#preview",
            "hx-select": "#preview",
            "hx-swap": "outerHTML",
            "hx-vals": '{"preview": "1"}',
        }
        self.helper.add_input(Submit("save", "Create course"))

    def clean(self):
        data = super().clean()
        patient, local = data.get("patient"), data.get("first_dose_local")
        if patient and local:
            # Django read the wall-clock entry in the server zone (UTC); read it again in the ward's zone, gaps forward.
            wall = timezone.make_naive(local, timezone.get_current_timezone())
            data["first_dose_at"] = to_local_aware(wall, patient.ward.zone)
        return data
