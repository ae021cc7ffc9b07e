"""HOLD-RULES §2 drug interactions: the seed monograph's list as data, and the warnings for a medication list."""

from dataclasses import dataclass


@dataclass(frozen=True)
class InteractionClass:
    name: str
    effect: str
    words: tuple[str, ...]  # lower-case name fragments matched against the patient's medication list


# HOLD-RULES §2 interaction list (seed monograph), as data. Matching is by name fragment: a warning to read, not proof.
INTERACTIONS = (
    InteractionClass(
        "aminoglycosides",
        "more toxicity (renal)",
        tuple("aminoglycoside gentamicin tobramycin amikacin streptomycin neomycin plazomicin".split()),
    ),
    InteractionClass("asparaginase", "more toxicity", ("asparaginase", "pegaspargase", "crisantaspase")),
    InteractionClass(
        "cytotoxic chemotherapy",
        "more toxicity",
        tuple(
            "chemotherapy cisplatin carboplatin cyclophosphamide dacarbazine vinblastine vincristine temozolomide "
            "fluorouracil paclitaxel docetaxel gemcitabine etoposide".split()
        ),
    ),
    InteractionClass("doxorubicin", "more toxicity (cardiac)", ("doxorubicin", "adriamycin")),
    InteractionClass("indomethacin", "more toxicity (renal)", ("indomethacin", "indometacin")),
    InteractionClass("methotrexate", "more toxicity (hepatic)", ("methotrexate",)),
    InteractionClass(
        "antihypertensives",
        "more hypotension",
        tuple(
            "antihypertensive amlodipine nifedipine felodipine diltiazem verapamil lisinopril enalapril ramipril "
            "captopril perindopril losartan valsartan candesartan irbesartan olmesartan telmisartan metoprolol "
            "atenolol bisoprolol carvedilol propranolol labetalol nebivolol hydrochlorothiazide chlorthalidone "
            "indapamide spironolactone clonidine hydralazine doxazosin prazosin minoxidil".split()
        ),
    ),
    InteractionClass(
        "glucocorticoids",
        "less antitumour effect",
        tuple(
            "glucocorticoid prednisone prednisolone methylprednisolone dexamethasone hydrocortisone cortisone "
            "budesonide triamcinolone betamethasone fludrocortisone".split()
        ),
    ),
)


@dataclass(frozen=True)
class Interaction:
    medication: str
    drug_class: str
    effect: str


def interaction_warnings(medication_names: list[str]) -> list[Interaction]:
    """The HOLD-RULES §2 interaction warnings for a medication list (pure)."""
    out = []
    for name in medication_names:
        lowered = name.lower()
        for cls in INTERACTIONS:
            if any(word in lowered for word in cls.words):
                out.append(Interaction(name, cls.name, cls.effect))
    return out
