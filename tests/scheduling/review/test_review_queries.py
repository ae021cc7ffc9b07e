"""Query counts of the course review (ARCHITECTURE.md: every list view and selector at two sizes).

The course page reads each table once: its count does not grow with the number of doses, holds, overrides,
adverse events or observations. The course list is one query for its rows whatever the number of courses.
"""

from datetime import timedelta

import pytest
import time_machine

from monitoring.models import VitalSigns
from scheduling import services
from scheduling.models import Dose
from scheduling.services import decisions
from tests.conftest import NOW, PASSWORD
from tests.scheduling.review.builders import build_course, flag_next

pytestmark = [pytest.mark.django_db]

# Session, user, roles (3); the course (1); doses, administrations, holds, overrides, cycle decisions, adverse events
# and their doses, responses, signatures, eligibility creatinine (10); this course's retreatment bars (1); medications
# (1); the plots' five observation tables (5); base.html's printed name (1); the session's last-action update (3:
# savepoint, update, release). A closed course adds the SCH-RETREAT check's two queries.
COURSE_PAGE_QUERIES = 25
COURSE_LIST_QUERIES = 8  # session, user, roles, the rows (one query), printed name, session update (3)


def rich_course(patient, staff, *, charted, extra_vitals):
    """A course with something of everything: holds, an override, an adverse event, a decision on the course."""
    course = build_course(patient, staff, charted=charted, extra_vitals=extra_vitals, abnormal={2: {"sbp": 84}})
    dose = flag_next(course, staff, now=NOW, sbp=85)
    services.dose_override(dose_id=dose.pk, reason="MAP ok", password=PASSWORD, by=staff.oncologist, now=NOW)
    held = Dose.objects.get(course=course, cycle=1, number=2)
    decisions.adverse_event_record(
        course_id=course.pk,
        category="cardiovascular",
        term="Hypotension",
        grade=2,
        onset_at=held.due_at - timedelta(hours=1),
        held_dose_ids=[held.pk],
        by=staff.oncologist,
        now=NOW,
    )
    return course


@pytest.mark.parametrize("charted,extra_vitals", [(3, 0), (48, 3)])
def test_course_page_query_count_does_not_grow(
    client, staff, patient_a, charted, extra_vitals, django_assert_num_queries
):
    course = rich_course(patient_a, staff, charted=charted, extra_vitals=extra_vitals)
    charted_doses = Dose.objects.filter(course=course).exclude(status="scheduled").count()
    assert charted_doses == (3 if charted == 3 else 20)  # the two sizes really differ
    assert VitalSigns.objects.count() > (80 if charted == 48 else 0)
    with time_machine.travel(NOW, tick=False):
        client.force_login(staff.oncologist)
        with django_assert_num_queries(COURSE_PAGE_QUERIES):
            response = client.get(f"/courses/{course.pk}/")
    assert response.status_code == 200 and "Hold overridden for one dose" in response.content.decode()


@pytest.mark.parametrize("courses", [1, 6])
def test_course_list_query_count_does_not_grow(client, staff, make_course, ward_a, courses, django_assert_num_queries):
    from il2ward.services import patient_create

    for k in range(courses):
        patient = patient_create(
            mrn=f"Q-{k}", name=f"Query {k}", birth_date=NOW.date(), ward=ward_a, by=staff.oncologist, now=NOW
        )
        make_course(patient)
    with time_machine.travel(NOW, tick=False):
        client.force_login(staff.oncologist)
        with django_assert_num_queries(COURSE_LIST_QUERIES):
            response = client.get("/courses/")
    assert response.content.decode().count('<tr id="course-') == courses
