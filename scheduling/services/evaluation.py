"""Pre-dose evaluation of doses (HOLD-RULES §3) and its consequences: flag, notify, retreatment bars.

Batch-shaped on purpose: the sweep evaluates every slot entering its pre-dose window in a constant number of
queries; a single dose (evaluate endpoint, charting) goes through the same path with a list of one.

Each evaluation uses the rule-set version its course started with (a site's threshold change applies to courses
created after it) and stores that version, so an old evaluation keeps naming the thresholds that made it. A course
whose version follows an older HOLD-RULES.md is evaluated under the current version of its rule set instead: the
§3a invariants are not switches, and a version that predates them cannot honour them.

How far back the history goes and which version a course is evaluated under are reads: selectors/courses.py.
"""

from datetime import datetime, timedelta

from django.db import transaction

from il2ward import board_version
from il2ward.audit import Entry, audit_many
from il2ward.notifications import Outgoing, flag_topic, notifications_resolve, notify_many
from il2ward.recipients import Directory
from monitoring.domain import engine
from monitoring.domain.rulesets import json_ready
from monitoring.domain.snapshot import RETREATMENT_BAR_EVENTS
from monitoring.models import ClinicalEvent, RuleSetVersion
from monitoring.selectors import SnapshotRequest, snapshots_for
from scheduling.models import Course, Dose, DoseEvaluation, Override, RetreatmentBar
from scheduling.selectors.courses import HISTORY_BEFORE_FIRST_DOSE, course_version, parsed_rule_set

SLOT_INTERVAL = timedelta(hours=8)  # SCH-SLOTS: "since the previous slot" for CV-PRESSOR
BLOCKING = ("hold", "stop", "discontinue")

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


def evaluate_doses(
    doses: list[Dose], *, now: datetime, trigger: str, as_of: datetime | None = None
) -> list[DoseEvaluation]:
    """Evaluate each dose from its patient's data; store the evaluation and flag the dose.

    `as_of` (charting: the infusion's start, HOLD-RULES §3a INV-START) evaluates from the observations whose clinical
    time is at or before it, as known now; such an evaluation is stored with the administration and the refusal but
    does not change the dose's flag or raise notifications (the evaluation as of now does that).

    `doses` must come with `course__patient__ward` and `course__rule_set` selected; a sweep selects DOSE_RELATED, so
    that telling many newly flagged doses' people reads nobody per dose (one locked dose reads its oncologist when
    it is newly flagged). Queries: 7 (snapshots) + 2 (insert, update); when doses are newly flagged, 1 more (the nursing
    staff of their wards), 4 for the notifications and 1 for the overrides still standing (and a transaction when
    the caller has none).
    """
    if not doses:
        return []
    clinical_time = now if as_of is None else as_of
    requests = {
        d.course.patient_id: SnapshotRequest(
            patient_id=d.course.patient_id,
            baseline_weight_kg=d.course.baseline_weight_kg,
            first_slot_of_cycle=d.number == 1,
            since=d.course.first_dose_at - HISTORY_BEFORE_FIRST_DOSE,
            interval_since=None if d.number == 1 else d.due_at - SLOT_INTERVAL,
            baseline_at=d.course.first_dose_at,
        )
        for d in doses
    }
    snapshots = snapshots_for(list(requests.values()), now=clinical_time)
    results = []
    for dose in doses:
        version = course_version(dose.course)
        snapshot = snapshots[dose.course.patient_id]
        result = engine.evaluate(snapshot, rule_set=parsed_rule_set(version), now=clinical_time)
        results.append((dose, result, snapshot, version))
    with transaction.atomic(savepoint=False):  # joins the caller's transaction (the dose lock) when there is one
        evaluations = DoseEvaluation.objects.bulk_create(
            [
                _evaluation_row(dose, result, version, now=now, as_of=clinical_time, trigger=trigger)
                for dose, result, _, version in results
            ]
        )
        if as_of is not None:
            _discontinue_courses(results, evaluations, now=now)
            return evaluations
        previous_flags = {dose.pk: dose.flag for dose in doses}
        for (dose, result, _, _), evaluation in zip(results, evaluations, strict=True):
            dose.latest_evaluation = evaluation
            dose.flag = result.decision if result.decision in (*BLOCKING, "incomplete") else ""
        if len(doses) == 1:  # the endpoint and charting: a plain UPDATE compiles faster than bulk_update's CASE
            Dose.objects.filter(pk=doses[0].pk).update(latest_evaluation=evaluations[0], flag=doses[0].flag)
        else:
            Dose.objects.bulk_update(doses, ["latest_evaluation", "flag"])
        board_version.changed(doses=[dose.pk for dose in doses])  # a flag is derived, not audited
        _consequences(previous_flags, results, now=now)
        _discontinue_courses(results, evaluations, now=now)
        _lapse_overrides(results, evaluations, now=now)
        _assessment_recorded(results, now=now)
    return evaluations


def _assessment_recorded(results, *, now: datetime) -> None:
    """A complete evaluation (anything but `incomplete`) means the pre-dose assessment is charted: the dose's open
    assessment_due reminders are answered (resolved for every recipient, pending e-mails and pages cancelled).
    Whatever charted the data (vitals, neuro, exam, weight, the assessment form), the evaluation that follows it is
    where the assessment becomes complete, so this is the one place that resolves them. One query."""
    complete = [dose.pk for dose, result, _, _ in results if result.decision != "incomplete"]
    if complete:
        notifications_resolve(dose_ids=complete, kinds=["assessment_due"], reason="assessment recorded", now=now)


def _discontinue_courses(results, evaluations, *, now: datetime) -> None:
    """INV-DISC: the first `discontinue` decision, or a §4 event recorded during the course (even one already marked
    resolved), marks the course discontinued; nothing clears it."""
    for (dose, result, snapshot, _), evaluation in zip(results, evaluations, strict=True):
        course = dose.course
        if course.discontinued_at is None and (
            result.decision == "discontinue" or bar_events(result, snapshot, since=course.created_at)
        ):
            if Course.objects.filter(pk=course.pk, discontinued_at__isnull=True).update(
                discontinued_at=now, discontinued_by=evaluation
            ):
                course.discontinued_at, course.discontinued_by = now, evaluation
                from il2ward.audit import audit

                audit(
                    actor=None,
                    action="course.discontinue",
                    obj=course,
                    at=now,
                    new={"evaluation": evaluation.pk, "dose": dose.pk, "rules": list(result.reasons)},
                )


def override_covers(covers: list[dict], findings: list[dict]) -> bool:
    """INV-OVR: an override lifts only the `hold` findings it was signed against: every hold finding now is of a
    rule it covered, at the same or a less severe value; any stop or discontinue finding lapses it."""
    if any(f["level"] in ("stop", "discontinue") for f in findings):
        return False
    signed: dict[str, list[dict]] = {}
    for cover in covers:
        signed.setdefault(cover["rule"], []).append(cover)
    for finding in findings:
        if finding["level"] != "hold":
            continue
        # One rule can hold on several inputs (CV-PRESSOR: phenylephrine at dosing and the highest since the last
        # slot), each with its own threshold: a value is compared with what was signed for the same input only.
        candidates = [
            cover
            for cover in signed.get(finding["rule"], [])
            if cover.get("threshold") is None or cover["threshold"] == finding.get("threshold")
        ]
        if not any(_not_worse(finding, cover) for cover in candidates):
            return False
    return True


def _not_worse(finding: dict, cover: dict) -> bool:
    measure, signed, worse = finding.get("measure"), cover.get("measure"), cover.get("worse")
    if measure is None or signed is None or worse is None:
        return finding["value"] == cover["value"]  # a sign, not a number: the same sign
    from decimal import Decimal

    now_value, signed_value = Decimal(measure), Decimal(signed)
    return now_value >= signed_value if worse == "lower" else now_value <= signed_value


def _lapse_overrides(results, evaluations, *, now: datetime) -> None:
    """A standing override that a new evaluation is no longer covered by lapses, so the dose is held again and the
    board, the MAR and the dose page show it as lapsed (INV-OVR). Read only for doses that hold now."""
    holding = {
        dose.pk: evaluation
        for (dose, result, _, _), evaluation in zip(results, evaluations, strict=True)
        if result.decision in BLOCKING
    }
    if not holding:
        return
    for override in Override.objects.filter(dose_id__in=holding, lapsed_at__isnull=True):
        evaluation = holding[override.dose_id]
        if not override_covers(override.covers, evaluation.findings):
            Override.objects.filter(pk=override.pk).update(lapsed_at=now, lapsed_by=evaluation)


def _evaluation_row(
    dose: Dose, result: engine.Evaluation, version: RuleSetVersion, *, now: datetime, as_of: datetime, trigger: str
):
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
        as_of=as_of,
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
            for kind, source in bar_events(result, snapshot, since=dose.course.created_at)
        ]
    flagged = [
        (dose, result)
        for dose, result, _, _ in results
        if dose.flag in BLOCKING and previous_flags[dose.pk] != dose.flag
    ]
    if flagged:
        directory = Directory({dose.course.patient.ward_id for dose, _ in flagged})
        outgoing = []
        for dose, result in flagged:
            course = dose.course
            kind = "stop_recommended" if dose.flag in ("stop", "discontinue") else "hold_flagged"
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
                        "decision": result.decision,  # discontinue: "oncologist to stop the course"
                        "cycle": dose.cycle,
                        "number": dose.number,
                        "evaluation": dose.latest_evaluation.pk,
                    },  # fmt: skip
                    due_at=dose.due_at,
                )
            )
        notify_many(outgoing, now=now)
        never_given = [dose.pk for dose, _ in flagged if dose.flag in ("stop", "discontinue")]
        if never_given:  # INV-STOP: the slot is never given; "give it" reminders still waiting are answered
            notifications_resolve(dose_ids=never_given, kinds=["dose_due", "dose_overdue"], reason="stop recommended",
                                  now=now)  # fmt: skip
    _record_bars(bars, now=now)


def _record_bars(bars: list[RetreatmentBar], *, now: datetime) -> None:
    """Store the bar events not already on their course, each with an audit row (the system records them: a
    clinical record written without a person). Nothing is read or written when there is none."""
    if not bars:
        return
    known = set(
        RetreatmentBar.objects.filter(course_id__in={bar.course_id for bar in bars}).values_list(
            "course_id", "kind", "source"
        )
    )
    unique = {(bar.course_id, bar.kind, bar.source): bar for bar in bars}
    new = [bar for key, bar in unique.items() if key not in known]
    if not new:
        return
    RetreatmentBar.objects.bulk_create(new, ignore_conflicts=True)  # unique(course, kind, source): a racing twin
    audit_many(
        Entry(
            None,
            "retreatment_bar.record",
            ("scheduling.course", bar.course_id),
            now,
            new={"kind": bar.kind, "source": bar.source},
        )  # fmt: skip
        for bar in new
    )


def bar_events(result, snapshot, *, since: datetime | None = None) -> list[tuple[str, str]]:
    """(bar kind, source id) of every retreatment-bar event in the patient's data since `since` (HOLD-RULES §4).

    Recorded events of a bar kind count as they are, resolved or not; a discontinue finding that is itself a bar is
    traced to the observation behind it: CV-RHYTHM's sustained VT to the vitals set (or the event), CV-ISCHEMIA to
    the chest-pain-with-ECG-changes event.
    """
    out = {
        (e.kind, e.source_id or e.kind)
        for e in snapshot.events
        if e.kind in RETREATMENT_BAR_EVENTS and (since is None or e.at >= since) and e.at <= result.evaluated_at
    }
    discontinued = {f.rule for f in result.findings if f.level == "discontinue"}
    if "CV-RHYTHM" in discontinued:
        rhythm = snapshot.rhythm
        vt = result.options.get("CV-RHYTHM.discontinue_rhythms", ("vt_sustained",))
        if rhythm is not None and rhythm.value in vt and rhythm.at <= result.evaluated_at:
            out.add(("sustained_vt", rhythm.source_id or "rhythm"))
    if "CV-ISCHEMIA" in discontinued:
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
    _record_bars(bars, now=now)
    return len(bars)
