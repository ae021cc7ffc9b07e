from django.urls import path

from scheduling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("wards/<slug:code>/", views.ward_page, name="ward"),
    path("courses/", views.course_list, name="course-list"),
    path("courses/new/", views.course_new, name="course-new"),
    path("courses/<int:pk>/", views.course_page, name="course"),
]
