from django.urls import path

from monitoring import api

urlpatterns = [
    path("patients/<int:pk>/vitals/", api.PatientVitals.as_view(), name="api-patient-vitals"),
    path("patients/<int:pk>/neuro/", api.PatientNeuro.as_view(), name="api-patient-neuro"),
    path("patients/<int:pk>/exam/", api.PatientExam.as_view(), name="api-patient-exam"),
    path("patients/<int:pk>/weights/", api.PatientWeights.as_view(), name="api-patient-weights"),
    path("patients/<int:pk>/fluids/", api.PatientFluids.as_view(), name="api-patient-fluids"),
    path("patients/<int:pk>/labs/", api.PatientLabs.as_view(), name="api-patient-labs"),
    path("patients/<int:pk>/events/", api.PatientEvents.as_view(), name="api-patient-events"),
    path("patients/<int:pk>/events/<int:event_id>/resolve/", api.EventResolve.as_view(), name="api-event-resolve"),
    path(
        "observations/<slug:kind>/<int:pk>/entered-in-error/",
        api.ObservationEnteredInError.as_view(),
        name="api-observation-entered-in-error",
    ),
]
