"""The course review's pages and its API (API.md additions). Included at the site root."""

from django.urls import path

from scheduling import api_review, review_views

urlpatterns = [
    path("courses/<int:pk>/eligibility/", review_views.eligibility, name="review-eligibility"),
    path("courses/<int:pk>/stop/", review_views.stop_course, name="review-stop"),
    path("courses/<int:pk>/cycle2/", review_views.cycle2, name="review-cycle2"),
    path("courses/<int:pk>/discharge/", review_views.discharge, name="review-discharge"),
    path("courses/<int:pk>/response/", review_views.response, name="review-response"),
    path("courses/<int:pk>/adverse-events/", review_views.adverse_event, name="review-adverse-event"),
    path(
        "courses/<int:pk>/adverse-events/<int:event_pk>/entered-in-error/",
        review_views.adverse_event_error,
        name="review-adverse-event-error",
    ),
    path("courses/<int:pk>/doses/<int:dose_pk>/override/", review_views.dose_override, name="review-override"),
    path(
        "courses/<int:pk>/doses/<int:dose_pk>/cycle-decision/",
        review_views.cycle_decision,
        name="review-cycle-decision",
    ),
    path("courses/<int:pk>/forms/<slug:name>/", review_views.form_fragment, name="review-form"),
    path("courses/<int:pk>/summary/", review_views.summary, name="review-summary"),
    path("courses/<int:pk>/summary.pdf", review_views.summary_pdf, name="review-summary-pdf"),
    # API (JSON): the decisions services.py's endpoints do not cover.
    path("api/v1/courses/<int:pk>/cycle-decisions/", api_review.CycleDecisions.as_view(), name="api-cycle-decisions"),
    path("api/v1/courses/<int:pk>/cycle2/", api_review.Cycle2.as_view(), name="api-course-cycle2"),
    path("api/v1/courses/<int:pk>/discharge/", api_review.Discharge.as_view(), name="api-course-discharge"),
    path(
        "api/v1/courses/<int:pk>/response-assessments/",
        api_review.ResponseAssessments.as_view(),
        name="api-response-assessments",
    ),
    path("api/v1/courses/<int:pk>/adverse-events/", api_review.AdverseEvents.as_view(), name="api-adverse-events"),
    path("api/v1/courses/<int:pk>/signatures/", api_review.Signatures.as_view(), name="api-course-signatures"),
    path("api/v1/patients/<int:pk>/retreatment/", api_review.Retreatment.as_view(), name="api-retreatment"),
]
