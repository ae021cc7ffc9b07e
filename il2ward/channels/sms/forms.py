"""The SMS preference: a mobile number in E.164 (+ country code and number), checked with libphonenumber."""

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError

HELP = "International format with the country code, e.g. +14155552671."


class E164Field(forms.CharField):
    """Accepts a valid international number however spaced ("+1 415-555-2671") and cleans it to E.164
    ("+14155552671"); a number without its country code is refused rather than guessed."""

    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return ""
        if not value.startswith("+"):
            raise ValidationError(f"Start with + and the country code. {HELP}", code="e164")
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError(f"Not a phone number. {HELP}", code="e164") from exc
        if not phonenumbers.is_valid_number(number):
            raise ValidationError(f"Not a valid phone number. {HELP}", code="e164")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fields() -> dict[str, forms.Field]:
    return {"phone": E164Field(label="Mobile number for text messages", required=False, max_length=32, help_text=HELP)}


def validate(values) -> dict[str, str]:
    if values.get("on") and not values.get("phone"):
        return {"phone": "A mobile number is needed to receive text messages."}
    return {}
