from decimal import Decimal

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.utils import timezone

from il2ward.forms import ConfirmImplausible
from il2ward.models import Patient
from scheduling.domain.calendar import to_local_aware
from scheduling.models import Course


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
