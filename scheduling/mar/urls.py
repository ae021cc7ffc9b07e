"""The nurse's pages (API.md "Pages with stable addresses"): the ward board, the patient, the dose, downtime."""

from django.urls import path

from scheduling.mar import views

urlpatterns = [
    path("", views.home, name="home"),
    path("wards/<slug:code>/", views.ward_page, name="ward"),
    path("wards/<slug:code>/downtime/", views.downtime, name="ward-downtime"),
    path("patients/<int:pk>/", views.patient_page, name="patient"),
    path("patients/<int:pk>/assessment/", views.assessment_page, name="patient-assessment"),
    path("patients/<int:pk>/fluids/", views.fluids_page, name="patient-fluids"),
    path("patients/<int:pk>/labs/", views.labs_page, name="patient-labs"),
    path("patients/<int:pk>/events/", views.events_page, name="patient-events"),
    path("patients/<int:pk>/teaching/", views.teaching_page, name="patient-teaching"),
    path("doses/<int:pk>/", views.dose_page, name="dose"),
]
