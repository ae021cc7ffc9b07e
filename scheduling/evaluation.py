"""Pre-dose evaluation of doses (HOLD-RULES §3) and its consequences: flag, notify, retreatment bars.

Batch-shaped on purpose: the sweep evaluates every slot entering its pre-dose window in a constant number of
queries; a single dose (evaluate endpoint, charting) goes through the same path with a list of one.
"""

from datetime import datetime

from django.db import transaction

from il2ward.models import Role
from il2ward.notifications import notify
from monitoring.domain import engine
from monitoring.domain.rulesets import RuleSet
from monitoring.domain.snapshot import RETREATMENT_BAR_EVENTS
from monitoring.selectors import SnapshotRequest, snapshots_for
from scheduling.models import Dose, DoseEvaluation, RetreatmentBar

# Findings that are themselves retreatment-bar events (HOLD-RULES §4): sustained VT, chest pain with ECG change.
BAR_FINDINGS = {"CV-RHYTHM": "sustained_vt", "CV-ISCHEMIA": "chest_pain_ecg"}


def evaluate_doses(doses: list[Dose], *, now: datetime, trigger: str) -> list[DoseEvaluation]:
    """Evaluate each dose from its patient's latest data; store the evaluation and flag the dose.

    `doses` must come with `course__patient__ward`, `course__rule_set` and `latest_evaluation` selected.
    """
    if not doses:
        return []
    requests = {
        d.course.patient_id: SnapshotRequest(
            patient_id=d.course.patient_id,
            baseline_weight_kg=d.course.baseline_weight_kg,
            first_slot_of_cycle=d.number == 1,
            since=d.course.created_at,
        )
        for d in doses
    }
    snapshots = snapshots_for(list(requests.values()), now=now)
    rule_sets: dict[int, RuleSet] = {}
    results = []
    for dose in doses:
        version = dose.course.rule_set
        if version.pk not in rule_sets:
            rule_sets[version.pk] = RuleSet.from_dict(version.definition)
        result = engine.evaluate(snapshots[dose.course.patient_id], rule_set=rule_sets[version.pk], now=now)
        results.append((dose, result, snapshots[dose.course.patient_id]))
    with transaction.atomic():
        evaluations = DoseEvaluation.objects.bulk_create(
            [_evaluation_row(dose, result.to_dict(), now=now, trigger=trigger) for dose, result, _ in results]
        )
        previous_flags = {dose.pk: dose.flag for dose in doses}
        for (dose, result, _), evaluation in zip(results, evaluations, strict=True):
            dose.latest_evaluation = evaluation
            dose.flag = result.decision if result.decision in ("hold", "stop", "incomplete") else ""
        Dose.objects.bulk_update(doses, ["latest_evaluation", "flag"])
        _consequences(doses, previous_flags, results, now=now)
    return evaluations


def _evaluation_row(dose: Dose, result: dict, *, now: datetime, trigger: str) -> DoseEvaluation:
    return DoseEvaluation(
        dose=dose,
        decision=result["decision"],
        findings=result["findings"],
        missing=result["missing"],
        grades=result["grades"],
        measures=result["measures"],
        observations_used=result["used"],
        rule_set=dose.course.rule_set,
        evaluated_at=now,
        trigger=trigger,
    )


def _consequences(doses, previous_flags, results, *, now) -> None:
    """Notify a new hold/stop flag; record retreatment-bar events on the course (HOLD-RULES §4)."""
    bars = []
    for dose, result, snapshot in results:
        course = dose.course
        bars += [
            RetreatmentBar(course=course, kind=kind, source=source, at=now)
            for kind, source in bar_events(result, snapshot)
        ]
        if dose.flag in ("hold", "stop") and previous_flags[dose.pk] != dose.flag:
            rules = [f.rule for f in result.findings if f.level in ("hold", "stop")]
            kind = "stop_recommended" if dose.flag == "stop" else "hold_flagged"
            notify(
                kind=kind,
                recipients=recipients_for(dose, kind),
                dedupe=f"{kind}:dose{dose.pk}",
                now=now,
                patient=course.patient,
                course_id=course.pk,
                dose_id=dose.pk,
                details={"rules": rules, "cycle": dose.cycle, "number": dose.number},
            )
    if bars:
        RetreatmentBar.objects.bulk_create(bars, ignore_conflicts=True)


def bar_events(result, snapshot) -> list[tuple[str, str]]:
    """(bar kind, source) pairs: retreatment-bar events in the patient's data, and findings that are bars."""
    out = [
        (event.kind, event.source_id or event.kind) for event in snapshot.events if event.kind in RETREATMENT_BAR_EVENTS
    ]
    for finding in result.findings:
        if finding.level == "stop" and finding.rule in BAR_FINDINGS:
            out.append((BAR_FINDINGS[finding.rule], f"finding:{finding.rule}"))
    return out


def recipients_for(dose: Dose, kind: str):
    """Who hears about a dose: the course's oncologist; for holds also the ward's nurses and charge nurses."""
    from django.contrib.auth import get_user_model

    users = [dose.course.oncologist]
    if kind in ("hold_flagged", "stop_recommended", "dose_missed"):
        users += list(
            get_user_model()
            .objects.filter(profile__wards=dose.course.patient.ward, groups__name__in=[Role.NURSE, Role.CHARGE_NURSE])
            .distinct()
        )
    return users
