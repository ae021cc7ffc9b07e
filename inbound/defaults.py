"""The mapping a new site starts with (mapping version 1, written by migration 0002): LOINC lab codes, vitals by
LOINC and by IEEE 11073 MDC (what bedside monitor gateways send). A site changes it through
inbound.services.mapping_change (a new version, audited), never by editing these lines.

Each row: (system, code, display, unit as received, target, field, factor, divisor, offset);
stored = (value + offset) × factor ÷ divisor.
"""

LABS, VITALS, IGNORE = "labs", "vitals", "ignore"

_TROPONIN = ("ng/L", 1, 1), ("pg/mL", 1, 1), ("ug/L", 1000, 1), ("ng/mL", 1000, 1)

DEFAULT_MAPPINGS = [
    # Labs (LabResult columns and their units: monitoring.models)
    ("LN", "2160-0", "Creatinine", "mg/dL", LABS, "creatinine_mg_dl", 1, 1, 0),
    ("LN", "2160-0", "Creatinine", "umol/L", LABS, "creatinine_mg_dl", 1, "88.42", 0),
    ("LN", "777-3", "Platelets", "10*3/uL", LABS, "platelets_k_ul", 1, 1, 0),
    ("LN", "777-3", "Platelets", "10*9/L", LABS, "platelets_k_ul", 1, 1, 0),
    ("LN", "1975-2", "Bilirubin total", "mg/dL", LABS, "bilirubin_mg_dl", 1, 1, 0),
    ("LN", "1975-2", "Bilirubin total", "umol/L", LABS, "bilirubin_mg_dl", 1, "17.1", 0),
    ("LN", "1963-8", "Bicarbonate", "mmol/L", LABS, "bicarbonate_mmol_l", 1, 1, 0),
    ("LN", "1963-8", "Bicarbonate", "meq/L", LABS, "bicarbonate_mmol_l", 1, 1, 0),
    ("LN", "1920-8", "AST", "U/L", LABS, "ast_u_l", 1, 1, 0),
    ("LN", "1742-6", "ALT", "U/L", LABS, "alt_u_l", 1, 1, 0),
    ("LN", "1751-7", "Albumin", "g/dL", LABS, "albumin_g_dl", 1, 1, 0),
    ("LN", "1751-7", "Albumin", "g/L", LABS, "albumin_g_dl", 1, 10, 0),
    ("LN", "2823-3", "Potassium", "mmol/L", LABS, "potassium_mmol_l", 1, 1, 0),
    ("LN", "2823-3", "Potassium", "meq/L", LABS, "potassium_mmol_l", 1, 1, 0),
    ("LN", "19123-9", "Magnesium", "mg/dL", LABS, "magnesium_mg_dl", 1, 1, 0),
    ("LN", "19123-9", "Magnesium", "mmol/L", LABS, "magnesium_mg_dl", "2.431", 1, 0),
    ("LN", "2777-1", "Phosphate", "mg/dL", LABS, "phosphate_mg_dl", 1, 1, 0),
    ("LN", "2777-1", "Phosphate", "mmol/L", LABS, "phosphate_mg_dl", "3.097", 1, 0),
    ("LN", "2951-2", "Sodium", "mmol/L", LABS, "sodium_mmol_l", 1, 1, 0),
    ("LN", "718-7", "Haemoglobin", "g/dL", LABS, "hemoglobin_g_dl", 1, 1, 0),
    ("LN", "718-7", "Haemoglobin", "g/L", LABS, "hemoglobin_g_dl", 1, 10, 0),
    ("LN", "6690-2", "WBC", "10*3/uL", LABS, "wbc_k_ul", 1, 1, 0),
    ("LN", "6690-2", "WBC", "10*9/L", LABS, "wbc_k_ul", 1, 1, 0),
    *(
        ("LN", code, name, u, LABS, "troponin_ng_l", f, d, 0)
        for code, name in (("6598-7", "Troponin T"), ("67151-1", "Troponin I hs"), ("89579-7", "Troponin I hs"))
        for u, f, d in _TROPONIN
    ),
    ("LN", "13969-1", "CK-MB", "ng/mL", LABS, "ck_mb_ng_ml", 1, 1, 0),
    ("LN", "13969-1", "CK-MB", "ug/L", LABS, "ck_mb_ng_ml", 1, 1, 0),
    # Vitals by LOINC
    ("LN", "8480-6", "Systolic BP", "mm[Hg]", VITALS, "sbp", 1, 1, 0),
    ("LN", "8462-4", "Diastolic BP", "mm[Hg]", VITALS, "dbp", 1, 1, 0),
    ("LN", "8867-4", "Heart rate", "/min", VITALS, "heart_rate", 1, 1, 0),
    ("LN", "9279-1", "Respiratory rate", "/min", VITALS, "resp_rate", 1, 1, 0),
    ("LN", "59408-5", "SpO2 by pulse oximetry", "%", VITALS, "spo2", 1, 1, 0),
    ("LN", "2708-6", "SaO2", "%", VITALS, "spo2", 1, 1, 0),
    ("LN", "8310-5", "Body temperature", "Cel", VITALS, "temp_c", 1, 1, 0),
    ("LN", "8310-5", "Body temperature", "[degF]", VITALS, "temp_c", 5, 9, -32),
    ("LN", "8478-0", "Mean BP", "mm[Hg]", IGNORE, "", 1, 1, 0),  # IL2Ward computes MAP from SBP and DBP
    # Vitals by IEEE 11073 MDC (monitor gateways)
    ("MDC", "150021", "MDC_PRESS_BLD_NONINV_SYS", "mm[Hg]", VITALS, "sbp", 1, 1, 0),
    ("MDC", "150022", "MDC_PRESS_BLD_NONINV_DIA", "mm[Hg]", VITALS, "dbp", 1, 1, 0),
    ("MDC", "150023", "MDC_PRESS_BLD_NONINV_MEAN", "mm[Hg]", IGNORE, "", 1, 1, 0),
    ("MDC", "150017", "MDC_PRESS_BLD_ART_SYS", "mm[Hg]", VITALS, "sbp", 1, 1, 0),
    ("MDC", "150018", "MDC_PRESS_BLD_ART_DIA", "mm[Hg]", VITALS, "dbp", 1, 1, 0),
    ("MDC", "147842", "MDC_ECG_HEART_RATE", "/min", VITALS, "heart_rate", 1, 1, 0),
    ("MDC", "149530", "MDC_PULS_OXIM_PULS_RATE", "/min", IGNORE, "", 1, 1, 0),  # the ECG rate is the heart rate
    ("MDC", "151562", "MDC_RESP_RATE", "/min", VITALS, "resp_rate", 1, 1, 0),
    ("MDC", "150456", "MDC_PULS_OXIM_SAT_O2", "%", VITALS, "spo2", 1, 1, 0),
    ("MDC", "150344", "MDC_TEMP", "Cel", VITALS, "temp_c", 1, 1, 0),
    ("MDC", "150364", "MDC_TEMP_BODY", "Cel", VITALS, "temp_c", 1, 1, 0),
]
