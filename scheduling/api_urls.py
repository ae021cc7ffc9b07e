from django.urls import path

from scheduling import api

urlpatterns = [
    path("courses/", api.CourseCreate.as_view(), name="api-courses"),
    path("courses/<int:pk>/", api.CourseDetail.as_view(), name="api-course"),
    path("courses/<int:pk>/doses/", api.CourseDoses.as_view(), name="api-course-doses"),
    path("doses/<int:pk>/", api.DoseDetail.as_view(), name="api-dose"),
]
