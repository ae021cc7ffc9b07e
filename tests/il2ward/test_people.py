"""People's names and initials (il2ward.people): the one way the pager, the MAR, the calendar, FHIR and the prints
name a person. Initials: the first letter of the first and of the last name, no dots, two letters at most."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template

from il2ward.people import initials, printed_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Maria Lopez", "ML"),
        ("Pat Alpha", "PA"),
        ("Jean-Luc de la Tour", "JT"),  # first and last name only: a patient's name is not spelt out
        ("Cher", "C"),
        ("x", "X"),
        ("  ", ""),
        ("", ""),
        ("o'Brien ann", "OA"),
        ("Nadia Reyes RN", "NR"),  # credentials behind are dropped
        ("Nadia Reyes RN BSN", "NR"),
        ("Chris Walker RN (charge)", "CW"),  # and a bracketed role
        ("Dr Olivia Hart", "OH"),  # and a title in front
        ("Dr. Olivia Hart", "OH"),
        ("Dr Hart", "H"),
        ("Maria LOPEZ", "ML"),  # a surname in capitals is a name, not a credential, when only two words remain
        ("LOPEZ Maria", "LM"),
        ("12 34", ""),
    ],
)
def test_initials(name, expected):
    assert initials(name) == expected


@pytest.mark.django_db
def test_printed_name_prefers_the_signature_name_then_the_full_name_then_the_username(django_user_model):
    user = django_user_model.objects.create_user("sortiz", password="x")
    assert printed_name(user) == "sortiz"  # no profile (a superuser made by createsuperuser): the username
    user.first_name, user.last_name = "Sam", "Ortiz"
    assert printed_name(user) == "Sam Ortiz"
    from il2ward.models import StaffProfile

    StaffProfile.objects.create(user=user, printed_name="Sam Ortiz RN")
    user.refresh_from_db()
    assert printed_name(user) == "Sam Ortiz RN"
    assert printed_name(None) == ""


@pytest.mark.django_db
def test_the_person_filter_is_printed_name_in_both_template_libraries(django_user_model):
    user = django_user_model.objects.create_user("kim", password="x", first_name="Kim", last_name="Lee")
    for library in ("people", "humanize_dose"):
        rendered = Template("{% load " + library + " %}{{ u|person }}|{{ none|person }}").render(
            Context({"u": user, "none": None})
        )
        assert rendered == "Kim Lee|"
    assert Template("{% load people %}{{ u|person }}").render(Context({"u": AnonymousUser()})) == ""
