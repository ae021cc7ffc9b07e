"""The oncologist's pages: the course list, a new course, the course review and its signed decisions, the summary."""

from django.urls import path

from scheduling.review import views

urlpatterns = [
    path("courses/", views.course_list, name="course-list"),
    path("courses/new/", views.course_new, name="course-new"),
    path("courses/<int:pk>/", views.course_page, name="course"),
    path("courses/<int:pk>/eligibility/", views.eligibility, name="review-eligibility"),
    path("courses/<int:pk>/stop/", views.stop_course, name="review-stop"),
    path("courses/<int:pk>/cycle2/", views.cycle2, name="review-cycle2"),
    path("courses/<int:pk>/discharge/", views.discharge, name="review-discharge"),
    path("courses/<int:pk>/response/", views.response, name="review-response"),
    path("courses/<int:pk>/adverse-events/", views.adverse_event, name="review-adverse-event"),
    path(
        "courses/<int:pk>/adverse-events/<int:event_pk>/entered-in-error/",
        views.adverse_event_error,
        name="review-adverse-event-error",
    ),
    path("courses/<int:pk>/doses/<int:dose_pk>/override/", views.dose_override, name="review-override"),
    path(
        "courses/<int:pk>/doses/<int:dose_pk>/cycle-decision/",
        views.cycle_decision,
        name="review-cycle-decision",
    ),
    path("courses/<int:pk>/forms/<slug:name>/", views.form_fragment, name="review-form"),
    path("courses/<int:pk>/summary/", views.summary, name="review-summary"),
    path("courses/<int:pk>/summary.pdf", views.summary_pdf, name="review-summary-pdf"),
]
