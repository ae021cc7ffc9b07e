"""The nurse's pages: home (her ward board), the ward board, and what hangs off it (issue: the nurse's eMAR)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone

from il2ward import access
from il2ward.models import Role
from scheduling import selectors


@login_required
def home(request):
    if access.has_role(request.user, Role.ONCOLOGIST):
        return redirect("course-list")
    ward = access.visible_wards(request.user).first()
    if ward is None:
        return render(request, "scheduling/no_ward.html")
    return redirect("ward", code=ward.code)


@login_required
def ward_page(request, code: str):
    ward = access.ward_for(request.user, code)
    now = timezone.now()
    with timezone.override(ward.zone):  # every time on a ward page is ward-local
        return render(
            request,
            "scheduling/ward.html",
            {
                "ward": ward,
                "rows": selectors.ward_patients(ward, now=now),
                "now": now,
                "wards": access.visible_wards(request.user),
            },
        )
