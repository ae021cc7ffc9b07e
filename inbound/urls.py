"""FHIR in (under /fhir/)."""

from django.urls import path

from inbound import views

urlpatterns = [
    path("Observation", views.ObservationCreate.as_view(), name="fhir-observation-create"),
    path("", views.Transaction.as_view(), name="fhir-transaction"),
]
