"""Every rule of HOLD-RULES.md §3 (consensus table and label-only rows), just inside and just outside each threshold.

Each case changes one thing in an otherwise normal, fresh patient and names the levels the rule must report
(empty = the rule stays silent). Case ids start with the rule id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from monitoring.domain.engine import evaluate
from monitoring.domain.rulesets import CONSENSUS_2014, LABEL_ONLY, RULE_SETS
from monitoring.domain.snapshot import Event, NeuroSet, Reading

NOW = datetime(2027, 3, 12, 16, 0, tzinfo=UTC)
HOLD, STOP, DISC, NOTIFY = "hold", "stop", "discontinue", "notify"


def case(rule, label, expected, rule_set="consensus-2014", **changes):
    return pytest.param(rule_set, rule, changes, frozenset(expected), id=f"{rule}[{rule_set}]: {label}")


def reading(value, hours_ago):
    return Reading(value, NOW - timedelta(hours=hours_ago), f"lab:{hours_ago}")


def neuro_sets(*sets):
    """NE-PERSIST history: (minutes before NOW, rass, confusion, neuro check failed), oldest first."""
    return tuple(
        NeuroSet(NOW - timedelta(minutes=minutes), rass, confusion, failed, f"neuro:{minutes}")
        for minutes, rass, confusion, failed in sets
    )


CONSENSUS_CASES = [
    case("CV-SBP", "89 holds", {HOLD}, sbp=89),
    case("CV-SBP", "89.9 holds", {HOLD}, sbp=D("89.9")),
    case("CV-SBP", "90 gives", set(), sbp=90),
    case("CV-PRESSOR", "none running", set(), phenylephrine_mcg_kg_min=0),
    case("CV-PRESSOR", "0.1 running notifies", {NOTIFY}, phenylephrine_mcg_kg_min=D("0.1")),
    case("CV-PRESSOR", "0.5 notifies only", {NOTIFY}, phenylephrine_mcg_kg_min=D("0.5")),
    case("CV-PRESSOR", "0.51 holds", {HOLD, NOTIFY}, phenylephrine_mcg_kg_min=D("0.51")),
    case("CV-PRESSOR", "0.8 holds", {HOLD, NOTIFY}, phenylephrine_mcg_kg_min=D("0.8")),
    case("CV-PRESSOR", "float 0.8 still holds (no binary rounding)", {HOLD, NOTIFY}, phenylephrine_mcg_kg_min=0.8),
    case("CV-PRESSOR", "0.81 stops", {STOP, NOTIFY}, phenylephrine_mcg_kg_min=D("0.81")),
    case("CV-PRESSOR", "highest since the last dose 0.99 is silent", set(), phenylephrine_max_interval=D("0.99")),
    case("CV-PRESSOR", "highest since the last dose 1.0 holds", {HOLD}, phenylephrine_max_interval=D("1.0")),
    case("CV-PRESSOR", "highest since the last dose 1.5 holds", {HOLD}, phenylephrine_max_interval=D("1.5")),
    case("CV-PRESSOR", "highest since the last dose 1.51 stops", {STOP}, phenylephrine_max_interval=D("1.51")),
    case("CV-PRESSOR", "no other vasopressor", set(), other_pressor="none"),
    case("CV-PRESSOR", "norepinephrine running stops", {STOP, NOTIFY}, other_pressor="norepinephrine"),
    case(
        "CV-PRESSOR",
        "dopamine 3 stops by default",
        {STOP, NOTIFY},
        other_pressor="dopamine",
        other_pressor_mcg_kg_min=3,
    ),
    case("CV-HR", "120 gives", set(), heart_rate=120),
    case("CV-HR", "121 holds", {HOLD}, heart_rate=121),
    case("CV-HR", "130 holds", {HOLD}, heart_rate=130),
    case("CV-HR", "131 stops", {STOP}, heart_rate=131),
    case("CV-HR", "140 stops without notify", {STOP}, heart_rate=140),
    case("CV-HR", "141 stops and notifies", {STOP, NOTIFY}, heart_rate=141),
    case("CV-RHYTHM", "sinus", set(), rhythm="sinus"),
    case("CV-RHYTHM", "new AF stops and notifies (Dutcher T3 absolute)", {STOP, NOTIFY}, rhythm="af"),
    case("CV-RHYTHM", "known AF stops", {STOP}, rhythm="af", previous_rhythm="af"),
    case("CV-RHYTHM", "new SVT stops and notifies", {STOP, NOTIFY}, rhythm="svt"),
    case("CV-RHYTHM", "frequent PVCs stop", {STOP, NOTIFY}, rhythm="pvc_frequent"),
    case("CV-RHYTHM", "bigeminy stops", {STOP, NOTIFY}, rhythm="bigeminy"),
    case("CV-RHYTHM", "non-sustained VT stops", {STOP, NOTIFY}, rhythm="nsvt"),
    case("CV-RHYTHM", "bradycardia needing treatment holds", {HOLD}, rhythm="brady_treated"),
    case("CV-RHYTHM", "sustained VT discontinues", {DISC, NOTIFY}, rhythm="vt_sustained"),
    case("CV-RHYTHM", "sustained VT event discontinues", {DISC}, events=["sustained_vt"]),
    case("CV-RHYTHM", "other new rhythm notifies only", {NOTIFY}, rhythm="other"),
    case("CV-RHYTHM", "new irregular rhythm event notifies", {NOTIFY}, events=["new_irregular_rhythm"]),
    case("CV-ISCHEMIA", "chest pain with ECG change discontinues", {DISC}, events=["chest_pain_ecg"]),
    case("CV-ISCHEMIA", "chest pain stops", {STOP}, events=["chest_pain"]),
    case("CV-ISCHEMIA", "chest pain and ECG change: discontinue only", {DISC}, events=["chest_pain", "chest_pain_ecg"]),
    case("CV-ISCHEMIA", "troponin 14 (ULN) is silent", set(), troponin_ng_l=14),
    case("CV-ISCHEMIA", "troponin 14.1 stops", {STOP}, troponin_ng_l=D("14.1")),
    case("CV-ISCHEMIA", "troponin 500 stops", {STOP}, troponin_ng_l=500),
    case("CV-ISCHEMIA", "CK-MB 5 (ULN) is silent", set(), ck_mb_ng_ml=5),
    case("CV-ISCHEMIA", "CK-MB 5.1 stops", {STOP}, ck_mb_ng_ml=D("5.1")),
    case(
        "CV-ISCHEMIA",
        "resolved chest pain is silent",
        set(),
        events=[Event("chest_pain_ecg", NOW - timedelta(hours=5), "e:1", NOW - timedelta(hours=1))],
    ),
    case("RS-SPO2", "89 holds", {HOLD}, spo2=89),
    case("RS-SPO2", "90 holds (the label resumes only above 90)", {HOLD}, spo2=90),
    case("RS-SPO2", "91 gives", set(), spo2=91),
    case("RS-O2", "room air", set(), o2_lpm=0),
    case("RS-O2", "room air at SpO2 94 needs 1 L/min: notifies", {NOTIFY}, o2_lpm=0, spo2=94),
    case("RS-O2", "2 L/min at SpO2 95 notifies only", {NOTIFY}, o2_lpm=2, spo2=95),
    case("RS-O2", "2 L/min at SpO2 94 needs 3: holds", {HOLD, NOTIFY}, o2_lpm=2, spo2=94),
    case("RS-O2", "4 L/min at SpO2 94 needs 5: stops", {STOP, NOTIFY}, o2_lpm=4, spo2=94),
    case("RS-O2", "FiO2 39 % at SpO2 94 needs 40: stops", {STOP, NOTIFY}, fio2_pct=39, spo2=94),
    case("RS-EXAM", "normal exam", set(), resting_dyspnea=False, rales="none", intubated=False),
    case("RS-EXAM", "dyspnoea at rest holds", {HOLD}, resting_dyspnea=True),
    case("RS-EXAM", "rales up to a third holds", {HOLD}, rales="lower_third"),
    case("RS-EXAM", "moist rales half the chest stops", {STOP}, rales="half_or_more"),
    case("RS-EXAM", "intubated stops", {STOP}, intubated=True),
    case("RS-O2", "2.9 L/min notifies", {NOTIFY}, o2_lpm=D("2.9")),
    case("RS-O2", "3 L/min holds", {HOLD, NOTIFY}, o2_lpm=3),
    case("RS-O2", "4 L/min holds", {HOLD, NOTIFY}, o2_lpm=4),
    case("RS-O2", "4.1 L/min stops", {STOP, NOTIFY}, o2_lpm=D("4.1")),
    case("RS-O2", "FiO2 21 % is room air", set(), fio2_pct=21),
    case("RS-O2", "FiO2 39 % notifies", {NOTIFY}, fio2_pct=39),
    case("RS-O2", "FiO2 40 % stops", {STOP, NOTIFY}, fio2_pct=40),
    case("RS-RR", "30 silent", set(), resp_rate=30),
    case("RS-RR", "31 notifies", {NOTIFY}, resp_rate=31),
    case("RN-UO", "161 mL gives", set(), urine_8h=161),
    case("RN-UO", "160 mL holds (inclusive)", {HOLD}, urine_8h=160),
    case("RN-UO", "80 mL holds", {HOLD}, urine_8h=80),
    case("RN-UO", "79 mL stops", {STOP}, urine_8h=79),
    case("RN-UO", "16 h period read pro rata: 320 mL → 160 in 8 h holds", {HOLD}, urine_16h=320),
    case("RN-UO", "16 h period read pro rata: 322 mL → 161 in 8 h gives", set(), urine_16h=322),
    case("RN-CREAT", "2.4 gives", set(), creatinine_mg_dl=D("2.4")),
    case("RN-CREAT", "2.5 holds", {HOLD}, creatinine_mg_dl=D("2.5")),
    case("RN-CREAT", "2.9 holds", {HOLD}, creatinine_mg_dl=D("2.9")),
    case("RN-CREAT", "2.95 holds", {HOLD}, creatinine_mg_dl=D("2.95")),
    case("RN-CREAT", "3.0 stops", {STOP}, creatinine_mg_dl=D("3.0")),
    case("RN-HCO3", "20 silent", set(), bicarbonate_mmol_l=20),
    case("RN-HCO3", "19 notifies", {NOTIFY}, bicarbonate_mmol_l=19),
    case("RN-HCO3", "18 stops", {STOP, NOTIFY}, bicarbonate_mmol_l=18),
    case("FL-WT", "4.875 % silent", set(), weight_kg=D("83.9")),
    case("FL-WT", "5 % notifies grade 1", {NOTIFY}, weight_kg=D("84.0")),
    case("FL-WT", "15 % notifies only", {NOTIFY}, weight_kg=D("92.0")),
    case("FL-WT", "15.0125 % holds", {HOLD, NOTIFY}, weight_kg=D("92.01")),
    case("NE-RASS", "0 silent", set(), rass=0),
    case("NE-RASS", "+1 notifies", {NOTIFY}, rass=1),
    case("NE-RASS", "+2 agitation holds", {HOLD, NOTIFY}, rass=2),
    case("NE-RASS", "+3 agitation holds", {HOLD, NOTIFY}, rass=3),
    case("NE-RASS", "-1 notifies", {NOTIFY}, rass=-1),
    case("NE-RASS", "-2 holds", {HOLD, NOTIFY}, rass=-2),
    case("NE-CONF", "none", set(), confusion="none"),
    case("NE-CONF", "mild notifies", {NOTIFY}, confusion="mild"),
    case("NE-CONF", "moderate holds", {HOLD}, confusion="moderate"),
    case("NE-CONF", "severe stops", {STOP}, confusion="severe"),
    case("NE-CHECK", "passed", set(), neuro_check_failed=False, hallucinations=False),
    case("NE-CHECK", "failed serial 7s stops", {STOP}, neuro_check_failed=True),
    case("NE-CHECK", "hallucinations stop", {STOP}, hallucinations=True),
    case("NE-CHECK", "persistent crying stops", {STOP}, persistent_crying=True),
    case(
        "NE-PERSIST",
        "mild confusion 1 h 59 min apart is not yet persistent",
        set(),
        neuro_history=neuro_sets((129, 0, "mild", False), (10, 0, "mild", False)),
    ),
    case(
        "NE-PERSIST",
        "mild confusion 2 h apart stops",
        {STOP},
        neuro_history=neuro_sets((130, 0, "mild", False), (10, 0, "mild", False)),
    ),
    case(
        "NE-PERSIST",
        "RASS −1 then a failed check 3 h apart stops",
        {STOP},
        neuro_history=neuro_sets((190, -1, "none", False), (100, 0, "none", True), (10, -1, "none", False)),
    ),
    case(
        "NE-PERSIST",
        "a normal set between resets it",
        set(),
        neuro_history=neuro_sets((190, 0, "mild", False), (100, 0, "none", False), (10, 0, "mild", False)),
    ),
    case(
        "NE-PERSIST",
        "changed 3 h ago but normal now",
        set(),
        neuro_history=neuro_sets((190, 0, "mild", False), (10, 0, "none", False)),
    ),
    case("NE-CONF", "vivid dreams or mild anxiety hold", {HOLD}, vivid_dreams_or_anxiety=True),
    case("GI-HEME", "no bleeding", set(), events=["edema"]),
    case("GI-HEME", "heme-positive holds", {HOLD}, events=["heme_positive"]),
    case("GI-HEME", "frank bleeding stops", {STOP}, events=["frank_bleeding"]),
    case("GI-HEME", "both: stop only", {STOP}, events=["heme_positive", "frank_bleeding"]),
    case("GI-DIARRHEA", "999 mL silent", set(), diarrhea=(0, 999)),
    case("GI-DIARRHEA", "1000 mL holds", {HOLD}, diarrhea=(0, 1000)),
    case("GI-DIARRHEA", "1000 mL twice stops", {STOP}, diarrhea=(1000, 1000)),
    case("GI-DIARRHEA", "999 then 1000 holds", {HOLD}, diarrhea=(999, 1000)),
    case("GI-DIARRHEA", "1000 then 999 silent (latest shift improved)", set(), diarrhea=(1000, 999)),
    case("HM-PLT", "51 gives", set(), platelets_k_ul=51),
    case("HM-PLT", "50 holds (inclusive)", {HOLD}, platelets_k_ul=50),
    case("HM-PLT", "30 holds", {HOLD}, platelets_k_ul=30),
    case("HM-PLT", "29 stops", {STOP}, platelets_k_ul=29),
    case("HM-PLT", "20 stops without notify", {STOP}, platelets_k_ul=20),
    case("HM-PLT", "19 stops and notifies", {STOP, NOTIFY}, platelets_k_ul=19),
    case("HP-BILI", "7 gives", set(), bilirubin_mg_dl=7),
    case("HP-BILI", "7.1 holds", {HOLD}, bilirubin_mg_dl=D("7.1")),
    case("TP-TEMP", "40.0 silent", set(), temp_c=D("40.0")),
    case("TP-TEMP", "40.1 notifies", {NOTIFY}, temp_c=D("40.1")),
    case("HP-TRANS", "AST 200 (5 × ULN) gives", set(), ast_u_l=200),
    case("HP-TRANS", "AST 201 discontinues", {DISC}, ast_u_l=201),
    case("HP-TRANS", "ALT 201 discontinues", {DISC}, alt_u_l=201),
    case("HP-TRANS", "liver pain discontinues", {DISC}, events=["liver_pain"]),
    case("HP-FAIL", "hepatic failure discontinues", {DISC}, events=["hepatic_failure"]),
    case("HP-FAIL", "hypoglycaemia discontinues", {DISC}, events=["hypoglycemia"]),
    case("GI-EXAM", "normal", set(), ileus_distension=False),
    case("GI-EXAM", "ileus or distension holds", {HOLD}, ileus_distension=True),
    case("GI-EXAM", "refractory vomiting stops", {STOP}, vomiting_refractory=True),
    case("GI-EXAM", "distension affecting breathing stops", {STOP}, distension_affects_breathing=True),
    case("GI-EXAM", "severe abdominal pain stops", {STOP}, abdominal_pain_severe=True),
    case("MS-EXAM", "normal", set(), extreme_tightness=False),
    case("MS-EXAM", "extreme tightness holds", {HOLD}, extreme_tightness=True),
    case("MS-EXAM", "extreme paraesthesias stop", {STOP}, extreme_paresthesias=True),
    case("SK-DESQ", "normal", set(), moist_desquamation=False),
    case("SK-DESQ", "moist desquamation stops", {STOP}, moist_desquamation=True),
    case("IN-INFECT", "unstable sepsis stops under the default set", {STOP}, events=["sepsis_unstable"]),
    case(
        "HP-FAIL",
        "resolved is silent",
        set(),
        events=[Event("hepatic_failure", NOW - timedelta(days=2), "e:6", NOW - timedelta(hours=3))],
    ),
    case("SK-BULLOUS", "bullous dermatitis holds", {HOLD}, events=["bullous_dermatitis"]),
    case(
        "SK-BULLOUS",
        "resolved is silent",
        set(),
        events=[Event("bullous_dermatitis", NOW - timedelta(days=2), "e:2", NOW - timedelta(hours=3))],
    ),
    case("IN-INFECT", "infection stops", {STOP}, events=["infection"]),
    case(
        "IN-INFECT",
        "recorded after now is not yet present",
        set(),
        events=[Event("infection", NOW + timedelta(minutes=1), "e:3")],
    ),
    case(
        "IN-INFECT",
        "resolution after now still counts",
        {STOP},
        events=[Event("infection", NOW - timedelta(hours=4), "e:4", NOW + timedelta(minutes=5))],
    ),
    case("AG-3REL", "two holds: no stop", set(), sbp=85, spo2=88),
    case("AG-3REL", "three holds stop", {STOP}, sbp=85, spo2=88, heart_rate=125),
    case(
        "LB-DISCONT",
        "intubation > 72 h discontinues under the default set too",
        {DISC},
        events=["intubation_over_72h"],
    ),
    case("LB-DISCONT", "an event read by another rule (sustained VT) is not repeated", set(), events=["sustained_vt"]),
]

LABEL = "label-only"
LABEL_CASES = [
    case("CV-SBP", "89 holds", {HOLD}, LABEL, sbp=89),
    case("CV-SBP", "90 gives", set(), LABEL, sbp=90),
    case("CV-RHYTHM", "sinus", set(), LABEL, rhythm="sinus"),
    case("CV-RHYTHM", "AF holds", {HOLD}, LABEL, rhythm="af", previous_rhythm="af"),
    case("CV-RHYTHM", "SVT holds (label: withhold)", {HOLD}, LABEL, rhythm="svt", previous_rhythm="svt"),
    case("CV-RHYTHM", "sustained VT discontinues", {DISC, NOTIFY}, LABEL, rhythm="vt_sustained"),
    case("CV-ISCHEMIA", "chest pain with ECG change discontinues", {DISC}, LABEL, events=["chest_pain_ecg"]),
    case("CV-ISCHEMIA", "angina / chest pain discontinues (label)", {DISC}, LABEL, events=["chest_pain"]),
    case("CV-ISCHEMIA", "troponin is not a label row", set(), LABEL, troponin_ng_l=500),
    case("CV-ISCHEMIA", "no event", set(), LABEL, events=["edema"]),
    case("RS-SPO2", "89 holds", {HOLD}, LABEL, spo2=89),
    case("RS-SPO2", "90 holds (resume only above 90)", {HOLD}, LABEL, spo2=90),
    case("RS-SPO2", "91 gives", set(), LABEL, spo2=91),
    case("NE-RASS", "+2 agitation holds", {HOLD, NOTIFY}, LABEL, rass=2),
    case("NE-RASS", "0 silent", set(), LABEL, rass=0),
    case("NE-RASS", "-2 holds", {HOLD, NOTIFY}, LABEL, rass=-2),
    case("NE-RASS", "-1 notifies", {NOTIFY}, LABEL, rass=-1),
    case("NE-CONF", "none", set(), LABEL, confusion="none"),
    case("NE-CONF", "mild notifies", {NOTIFY}, LABEL, confusion="mild"),
    case("NE-CONF", "moderate holds", {HOLD}, LABEL, confusion="moderate"),
    case("NE-CONF", "severe holds (label: withhold)", {HOLD}, LABEL, confusion="severe"),
    case("GI-HEME", "no bleeding", set(), LABEL, events=[]),
    case("GI-HEME", "heme-positive holds", {HOLD}, LABEL, events=["heme_positive"]),
    case("GI-HEME", "frank bleeding holds (label)", {HOLD}, LABEL, events=["frank_bleeding"]),
    case("HP-TRANS", "AST 200 gives", set(), LABEL, ast_u_l=200),
    case("HP-TRANS", "AST 201 discontinues", {DISC}, LABEL, ast_u_l=201),
    case("HP-FAIL", "hepatic failure discontinues", {DISC}, LABEL, events=["hepatic_failure"]),
    case("HP-FAIL", "liver pain is HP-TRANS, not HP-FAIL", set(), LABEL, events=["liver_pain"]),
    case("SK-BULLOUS", "bullous dermatitis holds", {HOLD}, LABEL, events=["bullous_dermatitis"]),
    case(
        "SK-BULLOUS",
        "recorded after now is not yet present",
        set(),
        LABEL,
        events=[Event("bullous_dermatitis", NOW + timedelta(minutes=2), "e:7")],
    ),
    case("LB-CREAT", "4.5 gives", set(), LABEL, creatinine_mg_dl=D("4.5")),
    case("LB-CREAT", "4.6 holds", {HOLD}, LABEL, creatinine_mg_dl=D("4.6")),
    case("LB-CREAT", "4.0 with volume overload holds", {HOLD}, LABEL, creatinine_mg_dl=4, events=["volume_overload"]),
    case(
        "LB-CREAT",
        "3.9 with volume overload gives",
        set(),
        LABEL,
        creatinine_mg_dl=D("3.9"),
        events=["volume_overload"],
    ),
    case(
        "LB-CREAT", "4.0 with bicarbonate 19 (acidosis) holds", {HOLD}, LABEL, creatinine_mg_dl=4, bicarbonate_mmol_l=19
    ),
    case("LB-CREAT", "4.0 with bicarbonate 20 gives", set(), LABEL, creatinine_mg_dl=4, bicarbonate_mmol_l=20),
    case(
        "LB-CREAT",
        "4.0 with potassium 5.6 (hyperkalaemia) holds",
        {HOLD},
        LABEL,
        creatinine_mg_dl=4,
        potassium_mmol_l=D("5.6"),
    ),
    case("LB-CREAT", "4.0 with potassium 5.5 gives", set(), LABEL, creatinine_mg_dl=4, potassium_mmol_l=D("5.5")),
    case("LB-CREAT", "4.4 alone gives", set(), LABEL, creatinine_mg_dl=D("4.4")),
    case(
        "LB-CREAT",
        "held since 4.6 until below 1.5: 3.0 still holds",
        {HOLD},
        LABEL,
        creatinine_mg_dl=3,
        creatinine_history=(reading(D("4.6"), 30),),
    ),
    case(
        "LB-CREAT",
        "held since 4.6: 1.5 still holds",
        {HOLD},
        LABEL,
        creatinine_mg_dl=D("1.5"),
        creatinine_history=(reading(D("4.6"), 30),),
    ),
    case(
        "LB-CREAT",
        "held since 4.6: 1.4 releases",
        set(),
        LABEL,
        creatinine_mg_dl=D("1.4"),
        creatinine_history=(reading(D("4.6"), 30),),
    ),
    case(
        "LB-CREAT",
        "released by an earlier 1.4: 3.0 gives",
        set(),
        LABEL,
        creatinine_mg_dl=3,
        creatinine_history=(reading(D("4.6"), 40), reading(D("1.4"), 20)),
    ),
    case(
        "LB-OLIG",
        "9.9 mL/h over 16 h with rising creatinine holds",
        {HOLD},
        LABEL,
        urine_16h=159,
        creatinine_mg_dl=D("1.3"),
        previous_creatinine=reading(D("1.1"), 12),
    ),
    case(
        "LB-OLIG",
        "10 mL/h gives",
        set(),
        LABEL,
        urine_16h=160,
        creatinine_mg_dl=D("1.3"),
        previous_creatinine=reading(D("1.1"), 12),
    ),
    case(
        "LB-OLIG",
        "creatinine unchanged gives",
        set(),
        LABEL,
        urine_16h=100,
        creatinine_mg_dl=D("1.1"),
        previous_creatinine=reading(D("1.1"), 12),
    ),
    case("LB-SEPSIS", "unstable sepsis holds", {HOLD}, LABEL, events=["sepsis_unstable"]),
    case(
        "LB-SEPSIS",
        "resolved sepsis gives",
        set(),
        LABEL,
        events=[Event("sepsis_unstable", NOW - timedelta(days=1), "e:5", NOW - timedelta(hours=1))],
    ),
    *[
        case("LB-DISCONT", f"{kind} discontinues", {DISC}, LABEL, events=[kind])
        for kind in LABEL_ONLY.options["LB-DISCONT.events"]
    ],
    case(
        "LB-DISCONT",
        "resolved event is silent",
        set(),
        LABEL,
        events=[Event("seizures", NOW - timedelta(days=1), "e:8", NOW - timedelta(hours=2))],
    ),
    # Consensus-only rules are not part of the label-only set.
    case("RN-CREAT", "not in the label set", set(), LABEL, creatinine_mg_dl=D("3.5")),
    case("CV-HR", "not in the label set", set(), LABEL, heart_rate=150),
    case("IN-INFECT", "not in the label set", set(), LABEL, events=["infection"]),
]


def _check(snapshot, rule_set_name, rule, changes, expected):
    evaluation = evaluate(snapshot(NOW, **changes), rule_set=RULE_SETS[rule_set_name], now=NOW)
    levels = {f.level for f in evaluation.findings if f.rule == rule}
    assert levels == expected, evaluation.findings
    assert evaluation.missing == ()
    blocking = {f.level for f in evaluation.findings} - {NOTIFY}
    assert evaluation.decision == next((d for d in (DISC, STOP, HOLD) if d in blocking), "give")
    for finding in evaluation.findings:
        assert finding.level in (HOLD, STOP, DISC, NOTIFY)
        assert finding.value in finding.message and finding.threshold in finding.message


@pytest.mark.parametrize(("rule_set_name", "rule", "changes", "expected"), CONSENSUS_CASES)
def test_consensus_rule_boundary(snapshot, rule_set_name, rule, changes, expected):
    _check(snapshot, rule_set_name, rule, changes, expected)


@pytest.mark.parametrize(("rule_set_name", "rule", "changes", "expected"), LABEL_CASES)
def test_label_only_rule_boundary(snapshot, rule_set_name, rule, changes, expected):
    _check(snapshot, rule_set_name, rule, changes, expected)


@pytest.mark.parametrize("rule_set", [CONSENSUS_2014, LABEL_ONLY], ids=lambda rs: rs.name)
def test_every_enabled_rule_has_a_firing_and_a_silent_boundary_case(rule_set):
    cases = [p.values for p in CONSENSUS_CASES + LABEL_CASES if p.values[0] == rule_set.name]
    no_firing = [rule for rule in rule_set.rules if not any(levels for _, r, _, levels in cases if r == rule)]
    no_silent = [rule for rule in rule_set.rules if not any(not levels for _, r, _, levels in cases if r == rule)]
    assert (no_firing, no_silent) == ([], [])


def test_normal_patient_gives_under_both_sets(snapshot):
    for rule_set in RULE_SETS.values():
        evaluation = evaluate(snapshot(NOW), rule_set=rule_set, now=NOW)
        assert (evaluation.decision, evaluation.findings, evaluation.missing) == ("give", (), ())


def test_cv_sbp_finding_names_rule_value_and_threshold(snapshot):
    [finding] = evaluate(snapshot(NOW, sbp=85), rule_set=CONSENSUS_2014, now=NOW).findings
    assert (finding.rule, finding.level, finding.value, finding.threshold) == ("CV-SBP", "hold", "85 mmHg", "< 90 mmHg")
    assert "hold this dose" in finding.message


def test_ag_3rel_lists_the_holding_rules(snapshot):
    evaluation = evaluate(snapshot(NOW, sbp=85, spo2=88, heart_rate=125), rule_set=CONSENSUS_2014, now=NOW)
    [aggregate] = [f for f in evaluation.findings if f.rule == "AG-3REL"]
    assert aggregate.value == "3 hold criteria (CV-SBP, CV-HR, RS-SPO2)"
    assert evaluation.decision == "stop"
    assert evaluation.reasons == ("CV-SBP", "CV-HR", "RS-SPO2", "AG-3REL")


def test_ag_3rel_does_not_count_a_hold_superseded_by_its_own_stop(snapshot):
    # HR 135 is a CV-HR stop, not a hold: SBP and SpO2 make only two holds.
    evaluation = evaluate(snapshot(NOW, sbp=85, spo2=88, heart_rate=135), rule_set=CONSENSUS_2014, now=NOW)
    assert not [f for f in evaluation.findings if f.rule == "AG-3REL"]
    assert [(f.rule, f.level) for f in evaluation.findings] == [
        ("CV-SBP", HOLD),
        ("CV-HR", STOP),
        ("RS-SPO2", HOLD),
        ("RS-O2", NOTIFY),  # SpO2 88 on room air: needs O2 (RS-O2 v2)
    ]


def test_notify_never_changes_the_decision(snapshot):
    evaluation = evaluate(
        snapshot(NOW, resp_rate=35, temp_c=D("40.5"), confusion="mild", rass=-1), rule_set=CONSENSUS_2014, now=NOW
    )
    assert {f.level for f in evaluation.findings} == {NOTIFY}
    assert evaluation.decision == "give"


def test_rn_uo_overlapping_periods_read_the_lower_urine(snapshot):
    from monitoring.domain.snapshot import FluidPeriod

    periods = (
        FluidPeriod(NOW - timedelta(hours=8), NOW, 400, 0, "f:a"),
        FluidPeriod(NOW - timedelta(hours=8), NOW, 100, 0, "f:b"),
    )
    evaluation = evaluate(snapshot(NOW, urine_periods=periods), rule_set=CONSENSUS_2014, now=NOW)
    assert [(f.rule, f.level, f.value) for f in evaluation.findings] == [("RN-UO", HOLD, "100 mL in 8 h")]


def test_rn_uo_reads_the_latest_complete_window_even_when_stale(snapshot):
    from monitoring.domain.snapshot import FluidPeriod

    # The last record ended 2 h ago: RN-UO still reads it (latest value), and the urine is reported missing.
    ended = NOW - timedelta(hours=2)
    periods = (FluidPeriod(ended - timedelta(hours=8), ended, 60, 0, "f:old"),)
    evaluation = evaluate(snapshot(NOW, urine_periods=periods), rule_set=CONSENSUS_2014, now=NOW)
    assert [(f.rule, f.level) for f in evaluation.findings] == [("RN-UO", STOP)]
    assert evaluation.missing == ("urine_8h",)
    assert evaluation.decision == "stop"
