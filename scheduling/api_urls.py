from django.urls import path

from scheduling import api

urlpatterns = [
    path("courses/", api.CourseCreate.as_view(), name="api-courses"),
    path("courses/<int:pk>/", api.CourseDetail.as_view(), name="api-course"),
    path("courses/<int:pk>/doses/", api.CourseDoses.as_view(), name="api-course-doses"),
    path("doses/<int:pk>/", api.DoseDetail.as_view(), name="api-dose"),
]

urlpatterns += [
    path("courses/<int:pk>/eligibility/", api.CourseEligibility.as_view(), name="api-course-eligibility"),
    path("courses/<int:pk>/stop/", api.CourseStop.as_view(), name="api-course-stop"),
    path("doses/<int:pk>/evaluate/", api.EvaluateDose.as_view(), name="api-dose-evaluate"),
    path("doses/<int:pk>/administer/", api.AdministerDose.as_view(), name="api-dose-administer"),
    path("doses/<int:pk>/hold/", api.HoldDose.as_view(), name="api-dose-hold"),
    path("doses/<int:pk>/override/", api.OverrideDose.as_view(), name="api-dose-override"),
    path("administrations/<int:pk>/entered-in-error/", api.EnteredInError.as_view(), name="api-entered-in-error"),
]
