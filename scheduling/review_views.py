"""The oncologist's pages: course list and course review."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from scheduling import selectors


@login_required
def course_list(request):
    courses = selectors.course_list(request.user)
    return render(request, "scheduling/course_list.html", {"courses": courses})


@login_required
def course_page(request, pk: int):
    course = selectors.course_for(request.user, pk)
    zone = course.patient.ward.zone
    doses = selectors.course_doses(course)
    with timezone.override(zone):
        return render(
            request,
            "scheduling/course.html",
            {
                "course": course,
                "summary": selectors.course_summary(course),
                "doses": [(d, d.due_at.astimezone(zone), selectors.standing_administration(d)) for d in doses],
                "zone": zone,
                "scheduling": course.status == course.Status.SCHEDULING,
            },
        )
