"""The nurse's pages (API.md "Pages with stable addresses"); `home` and `ward` are in scheduling/urls.py."""

from django.urls import path

from scheduling import nurse_views

urlpatterns = [
    path("wards/<slug:code>/downtime/", nurse_views.downtime, name="ward-downtime"),
    path("patients/<int:pk>/", nurse_views.patient_page, name="patient"),
    path("patients/<int:pk>/assessment/", nurse_views.assessment_page, name="patient-assessment"),
    path("patients/<int:pk>/fluids/", nurse_views.fluids_page, name="patient-fluids"),
    path("patients/<int:pk>/labs/", nurse_views.labs_page, name="patient-labs"),
    path("patients/<int:pk>/events/", nurse_views.events_page, name="patient-events"),
    path("patients/<int:pk>/teaching/", nurse_views.teaching_page, name="patient-teaching"),
    path("doses/<int:pk>/", nurse_views.dose_page, name="dose"),
]
