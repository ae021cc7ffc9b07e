"""Why a dose is held, in words: the nurse's own reasons beside the rule ids, and a rule or reason as she reads it."""

from monitoring.domain.rulesets import RULE_CATALOGUE

# A nurse may hold for a reason of her own, beside the rules the evaluation names (HOLD-RULES §3: never made up).
OTHER_HOLD_REASONS = [
    ("patient_declined", "Patient declined"),
    ("no_iv_access", "No IV access"),
    ("drug_unavailable", "Drug not available"),
    ("off_ward", "Patient off the ward"),
    ("oncologist_order", "Oncologist's order"),
    ("other", "Other (say why in the note)"),
]


def rule_title(rule_id) -> str:
    """ "CV-SBP" → "Systolic blood pressure", "no_iv_access" → "No IV access": a rule or a nurse's hold reason in words
    for the nurse (the id stays beside it); an id it does not know is shown as it is, never dropped."""
    info = RULE_CATALOGUE.get(str(rule_id))
    if info:
        return info.title
    return dict(OTHER_HOLD_REASONS).get(str(rule_id)) or str(rule_id).replace("_", " ")
