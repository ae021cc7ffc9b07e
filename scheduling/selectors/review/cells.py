"""The course page's grid: a cell per slot, with what it prints, and the counts it adds up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from il2ward import timefmt
from il2ward.people import initials, printed_name
from monitoring.domain import engine
from scheduling.models import CycleDecision, Dose, Hold


@dataclass
class Counts:
    given: int = 0
    held: int = 0
    missed: int = 0
    scheduled: int = 0
    cancelled: int = 0
    early: int = 0
    on_time: int = 0
    late: int = 0
    dose_iu: int = 0

    def add(self, cell: Cell) -> None:
        setattr(self, cell.dose.status, getattr(self, cell.dose.status) + 1)
        if cell.administration is not None:
            setattr(self, cell.administration.timing, getattr(self, cell.administration.timing) + 1)
            self.dose_iu += cell.administration.dose_iu


@dataclass
class Cell:
    dose: Dose
    local: datetime
    administration: object | None = None
    hold: Hold | None = None
    overrides: list = field(default_factory=list)
    decision: CycleDecision | None = None
    adverse_events: list = field(default_factory=list)
    signatures: list = field(default_factory=list)  # SignatureRow of its overrides and cycle decision
    is_next: bool = False
    form: object | None = None  # the page's signed form for an open hold or a stop recommendation

    # Computed once per cell (the grid and the dose log both print them): cached, and plain strings, because the
    # template engine's filters (date, join) on 28 cells × two tables cost more than the page's queries.

    @cached_property
    def status_short(self) -> str:
        return {"scheduled": "Open", "cancelled": "Cancel'd"}.get(self.dose.status, self.dose.get_status_display())

    @cached_property
    def day(self) -> str:
        return f"{self.local:%a} {self.local.day}"

    @cached_property
    def time(self) -> str:
        return f"{self.local:%H:%M}"

    @cached_property
    def when(self) -> str:
        """ "Wed 25 Nov 2026 10:40 CST": the ward-local due time with its zone."""
        return timefmt.local_text(self.local, self.local.tzinfo, timefmt.PRINTED)

    @cached_property
    def css(self) -> str:
        classes = [f"cell-{self.dose.status}"]
        if self.dose.flag and self.dose.status == Dose.Status.SCHEDULED:
            classes.append(f"cell-flag-{self.dose.flag}")
        if self.is_next:
            classes.append("cell-next")
        return " ".join(classes)

    @cached_property
    def rules_text(self) -> str:
        return " ".join(self.rules)

    @cached_property
    def given_text(self) -> str:
        """ "10:36 · on time · 43,440,000 IU" for an administration."""
        adm = self.administration
        if adm is None:
            return ""
        started = adm.started_at.astimezone(self.local.tzinfo)
        return f"{started:%H:%M} · {adm.get_timing_display().lower()}"

    @cached_property
    def charted_by(self) -> str:
        adm = self.administration
        if adm is not None:
            return f"{printed_name(adm.given_by)} · checked by {printed_name(adm.verified_by)}"
        if self.hold is not None:
            held_at = f"{self.hold.at.astimezone(self.local.tzinfo):%a %H:%M}"
            who = f"held by {printed_name(self.hold.by)}" if self.hold.by else "recorded held at due + W (automatic)"
            return f"{who}, {held_at}"
        return ""

    @cached_property
    def override_by(self) -> str:
        """Initials of who signed this slot's override(s)."""
        return " ".join(dict.fromkeys(initials(printed_name(o.by)) for o in self.overrides))

    @cached_property
    def charted_short(self) -> str:
        adm = self.administration
        if adm is not None:
            short = f"{initials(printed_name(adm.given_by))}/{initials(printed_name(adm.verified_by))}"
            return short if adm.timing == "on_time" else f"{short} · {adm.get_timing_display().lower()}"
        if self.hold is not None:
            return initials(printed_name(self.hold.by)) if self.hold.by else "auto"
        return ""

    @cached_property
    def rules(self) -> list[str]:
        """Rule ids behind this slot's hold, or behind its open hold/stop flag."""
        if self.hold is not None:
            return list(self.hold.rule_ids) or [self.hold.reason]
        evaluation = self.dose.latest_evaluation
        if self.dose.flag in engine.BLOCKING_LEVELS and evaluation is not None:
            return engine.blocking_rules(evaluation.findings)
        return []

    @cached_property
    def findings(self) -> list[dict]:
        """The hold and stop findings that explain this slot (from the hold's evaluation, else the latest one)."""
        evaluation = self.hold.evaluation if self.hold is not None and self.hold.evaluation else None
        evaluation = evaluation or self.dose.latest_evaluation
        if evaluation is None or (self.hold is None and not self.dose.flag):
            return []
        return [f for f in evaluation.findings if f["level"] in engine.BLOCKING_LEVELS]
