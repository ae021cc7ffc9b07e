"""The course and dose API under /api/v1/ (API.md), with the course review's decisions."""

from django.urls import path

from scheduling.api import review, views

urlpatterns = [
    path("courses/", views.CourseCreate.as_view(), name="api-courses"),
    path("courses/<int:pk>/", views.CourseDetail.as_view(), name="api-course"),
    path("courses/<int:pk>/doses/", views.CourseDoses.as_view(), name="api-course-doses"),
    path("doses/<int:pk>/", views.DoseDetail.as_view(), name="api-dose"),
]

urlpatterns += [
    path("courses/<int:pk>/eligibility/", views.CourseEligibility.as_view(), name="api-course-eligibility"),
    path("courses/<int:pk>/stop/", views.CourseStop.as_view(), name="api-course-stop"),
    path("doses/<int:pk>/evaluate/", views.EvaluateDose.as_view(), name="api-dose-evaluate"),
    path("doses/<int:pk>/administer/", views.AdministerDose.as_view(), name="api-dose-administer"),
    path("doses/<int:pk>/hold/", views.HoldDose.as_view(), name="api-dose-hold"),
    path("doses/<int:pk>/override/", views.OverrideDose.as_view(), name="api-dose-override"),
    path("administrations/<int:pk>/entered-in-error/", views.EnteredInError.as_view(), name="api-entered-in-error"),
]

# The course review's signed decisions and records (API.md additions).
urlpatterns += [
    path("courses/<int:pk>/cycle-decisions/", review.CycleDecisions.as_view(), name="api-cycle-decisions"),
    path("courses/<int:pk>/cycle2/", review.Cycle2.as_view(), name="api-course-cycle2"),
    path("courses/<int:pk>/discharge/", review.Discharge.as_view(), name="api-course-discharge"),
    path(
        "courses/<int:pk>/response-assessments/",
        review.ResponseAssessments.as_view(),
        name="api-response-assessments",
    ),
    path("courses/<int:pk>/adverse-events/", review.AdverseEvents.as_view(), name="api-adverse-events"),
    path("courses/<int:pk>/signatures/", review.Signatures.as_view(), name="api-course-signatures"),
    path("patients/<int:pk>/retreatment/", review.Retreatment.as_view(), name="api-retreatment"),
]
