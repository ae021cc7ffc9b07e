"""What every form shares: a service's Invalid put on the form's fields, and the INV-PLAUSIBLE confirmation."""

from django import forms

from il2ward.errors import Invalid


class ConfirmImplausible(forms.Form):
    """`confirm` and `confirm_reason`, hidden until a service refuses a value only as implausible (HOLD-RULES §3a
    INV-PLAUSIBLE: 176 typed for an 80 kg patient). Then they appear beside the refusal; the nurse either corrects
    the value or ticks the box and says why it is right, and the reason is stored and shown with the value."""

    confirm = forms.BooleanField(
        label="I have checked this value: it is right", required=False, widget=forms.HiddenInput
    )
    confirm_reason = forms.CharField(label="Why it is right", required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("confirm", "confirm_reason"):  # after the values they confirm
            self.fields[name] = self.fields.pop(name)
        if self.is_bound and self.data.get(self.add_prefix("confirm")) in ("on", "true", "True", "1"):
            self.ask_confirmation()  # sent confirmed: keep the box in view whatever happens next

    def ask_confirmation(self) -> None:
        self.fields["confirm"].widget = forms.CheckboxInput()
        self.fields["confirm_reason"].widget = forms.TextInput(attrs={"placeholder": "e.g. reweighed: new scale"})

    @property
    def asks_confirmation(self) -> bool:
        return not isinstance(self.fields["confirm"].widget, forms.HiddenInput)

    def confirmation(self) -> dict:
        data = self.cleaned_data
        return {"confirm": bool(data.get("confirm")), "confirm_reason": data.get("confirm_reason", "")}


def apply_errors(form: forms.Form, exc: Invalid) -> None:
    """Put a service's Invalid errors on the form's fields (unknown names become form-wide errors); when a value was
    refused only as implausible, offer the confirmation."""
    if exc.confirmable and isinstance(form, ConfirmImplausible):
        form.ask_confirmation()
    for field, messages in exc.errors.items():
        if field in form.fields and isinstance(form.fields[field].widget, forms.HiddenInput):
            form.fields[field].widget = forms.TextInput()  # a field asked for only when needed: now it is
        form.add_error(field if field in form.fields else None, messages)


def error_summary(*forms) -> list[dict]:
    """Every refused field of the bound forms, in page order, for the summary at the top of a page: label, message
    and the id of the field to jump to (form-wide errors have none)."""
    summary = []
    for form in forms:
        if form is None or not form.is_bound or not form.errors:
            continue
        for name, messages in form.errors.items():
            field = form.fields.get(name)
            target = form[name].auto_id if field is not None else ""
            label = field.label if field is not None and field.label else "This form"
            summary += [{"href": f"#{target}" if target else "", "label": label, "message": m} for m in messages]
    return summary
