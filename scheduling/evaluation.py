"""Pre-dose evaluation of doses (HOLD-RULES §3) and its consequences: flag, notify, retreatment bars.

Batch-shaped on purpose: the sweep evaluates every slot entering its pre-dose window in a constant number of
queries; a single dose (evaluate endpoint, charting) goes through the same path with a list of one.

Each evaluation uses the newest version of the course's rule set (a site's threshold change applies from the next
evaluation on) and stores that version, so an old evaluation keeps naming the thresholds that made it.
"""

from datetime import datetime

from django.db import transaction

from il2ward.notifications import Outgoing, flag_topic, notify_many
from il2ward.recipients import Directory
from monitoring.domain import engine
from monitoring.domain.rulesets import RuleSet, json_ready
from monitoring.domain.snapshot import RETREATMENT_BAR_EVENTS
from monitoring.models import ClinicalEvent, RuleSetVersion
from monitoring.selectors import SnapshotRequest, snapshots_for
from scheduling.models import Course, Dose, DoseEvaluation, RetreatmentBar

# What evaluate_doses (and the sweeps that notify about doses) need selected on a Dose queryset: the course, its rule
# set and oncologist, the latest evaluation, and the patient's ward, on-call oncologist and assigned nurse with their
# profiles, so that il2ward.recipients.Directory answers who hears about a dose without a further query per dose.
DOSE_RELATED = (
    "course__patient__ward__on_call_oncologist__profile",
    "course__patient__assigned_nurse__profile",
    "course__oncologist",
    "course__rule_set",
    "latest_evaluation",
)

# Parsing a definition costs more than comparing it, so the parsed rule set is kept per row. The definition is
# compared on every use: an id can come back with other content (a rolled-back row on SQLite, a test database).
_PARSED: dict[int, tuple[dict, RuleSet]] = {}


def parsed_rule_set(version: RuleSetVersion) -> RuleSet:
    cached = _PARSED.get(version.pk)
    if cached is None or cached[0] != version.definition:
        cached = _PARSED[version.pk] = (version.definition, RuleSet.from_dict(version.definition))
    return cached[1]


def current_versions(names) -> dict[str, RuleSetVersion]:
    """The newest version of each named rule set (one query)."""
    newest: dict[str, RuleSetVersion] = {}
    for version in RuleSetVersion.objects.filter(name__in=set(names)).order_by("name", "-version"):
        newest.setdefault(version.name, version)
    return newest


def evaluate_doses(doses: list[Dose], *, now: datetime, trigger: str) -> list[DoseEvaluation]:
    """Evaluate each dose from its patient's latest data; store the evaluation and flag the dose.

    `doses` must come with `course__patient__ward`, `course__rule_set`, `course__oncologist` and
    `latest_evaluation` selected; a sweep selects DOSE_RELATED, so that telling many newly flagged doses' people reads
    nobody per dose. Queries: 1 (rule-set versions) + 6 (snapshots) + 2 (insert, update); when doses are newly
    flagged, 1 more (the nursing staff of their wards) and 4 for the notifications (and a transaction when the caller
    has none).
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
    versions = current_versions(d.course.rule_set.name for d in doses)
    snapshots = snapshots_for(list(requests.values()), now=now)
    results = []
    for dose in doses:
        version = versions.get(dose.course.rule_set.name, dose.course.rule_set)
        snapshot = snapshots[dose.course.patient_id]
        result = engine.evaluate(snapshot, rule_set=parsed_rule_set(version), now=now)
        results.append((dose, result, snapshot, version))
    with transaction.atomic(savepoint=False):  # joins the caller's transaction (the dose lock) when there is one
        evaluations = DoseEvaluation.objects.bulk_create(
            [_evaluation_row(dose, result, version, now=now, trigger=trigger) for dose, result, _, version in results]
        )
        previous_flags = {dose.pk: dose.flag for dose in doses}
        for (dose, result, _, _), evaluation in zip(results, evaluations, strict=True):
            dose.latest_evaluation = evaluation
            dose.flag = result.decision if result.decision in ("hold", "stop", "incomplete") else ""
        if len(doses) == 1:  # the endpoint and charting: a plain UPDATE compiles faster than bulk_update's CASE
            Dose.objects.filter(pk=doses[0].pk).update(latest_evaluation=evaluations[0], flag=doses[0].flag)
        else:
            Dose.objects.bulk_update(doses, ["latest_evaluation", "flag"])
        _consequences(previous_flags, results, now=now)
    return evaluations


def _evaluation_row(dose: Dose, result: engine.Evaluation, version: RuleSetVersion, *, now: datetime, trigger: str):
    """The stored evaluation. The thresholds and options are not copied: the row points at its rule-set version."""
    return DoseEvaluation(
        dose=dose,
        decision=result.decision,
        findings=[f.to_dict() for f in result.findings],
        missing=list(result.missing),
        grades=dict(result.grades),
        measures=json_ready(result.measures),
        observations_used=list(result.used),
        rule_set=version,
        evaluated_at=now,
        trigger=trigger,
    )


def _consequences(previous_flags, results, *, now) -> None:
    """Notify a new hold/stop flag; record retreatment-bar events on the course (HOLD-RULES §4, SCH-RETREAT).

    Who hears about the new flags is read once for all their wards (one query), and their notifications are written
    together (il2ward.notifications.notify_many), however many doses are flagged.
    """
    bars = []
    for dose, result, snapshot, _ in results:
        bars += [
            RetreatmentBar(course=dose.course, kind=kind, source=source, at=now)
            for kind, source in bar_events(result, snapshot)
        ]
    flagged = [
        (dose, result)
        for dose, result, _, _ in results
        if dose.flag in ("hold", "stop") and previous_flags[dose.pk] != dose.flag
    ]
    if flagged:
        directory = Directory({dose.course.patient.ward_id for dose, _ in flagged})
        outgoing = []
        for dose, result in flagged:
            course = dose.course
            kind = "stop_recommended" if dose.flag == "stop" else "hold_flagged"
            outgoing.append(
                Outgoing(
                    kind=kind,
                    recipients=directory.for_kind(kind, patient=course.patient, oncologist=course.oncologist),
                    dedupe=flag_topic(kind, dose),
                    patient=course.patient,
                    course_id=course.pk,
                    dose_id=dose.pk,
                    details={
                        "rules": list(result.reasons),
                        "cycle": dose.cycle,
                        "number": dose.number,
                        "evaluation": dose.latest_evaluation.pk,
                    },  # fmt: skip
                    due_at=dose.due_at,
                )
            )
        notify_many(outgoing, now=now)
    if bars:
        RetreatmentBar.objects.bulk_create(bars, ignore_conflicts=True)  # unique(course, kind, source): once each


def bar_events(result, snapshot) -> list[tuple[str, str]]:
    """(bar kind, source id) of every retreatment-bar event in the patient's data (HOLD-RULES §4).

    Recorded events of a bar kind count as they are; a stop finding that is itself a bar is traced to the
    observation behind it: CV-RHYTHM's sustained VT to the vitals set (or the event), CV-ISCHEMIA to the chest-pain
    event.
    """
    out = {(e.kind, e.source_id or e.kind) for e in snapshot.events if e.kind in RETREATMENT_BAR_EVENTS}
    stops = {f.rule for f in result.findings if f.level == "stop"}
    if "CV-RHYTHM" in stops:
        rhythm = snapshot.rhythm
        if rhythm is not None and rhythm.value in result.options.get("CV-RHYTHM.stop_rhythms", ("vt_sustained",)):
            out.add(("sustained_vt", rhythm.source_id or "rhythm"))
    if "CV-ISCHEMIA" in stops:
        out |= {
            ("chest_pain_ecg", e.source_id or e.kind)
            for e in snapshot.events
            if e.kind == "chest_pain_ecg" and e.active_at(result.evaluated_at)
        }
    return sorted(out)


def record_bars_after_course(*, patient_id: int, now: datetime) -> int:
    """New data for a patient without an open slot: a bar event recorded since the latest course began still
    bars retreatment (SCH-RETREAT), so record it on that course. Returns the number of bar events found."""
    course = Course.objects.filter(patient_id=patient_id).order_by("-first_dose_at", "-pk").first()
    if course is None:
        return 0
    events = ClinicalEvent.objects.filter(
        patient_id=patient_id,
        kind__in=RETREATMENT_BAR_EVENTS,
        entered_in_error_at__isnull=True,
        recorded_at__gte=course.created_at,
        recorded_at__lte=now,
    )
    bars = [RetreatmentBar(course=course, kind=e.kind, source=e.source_id, at=now) for e in events]
    if bars:
        RetreatmentBar.objects.bulk_create(bars, ignore_conflicts=True)
    return len(bars)
