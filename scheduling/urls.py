from django.urls import include, path

from scheduling import nurse_views, review_views, views

urlpatterns = [
    path("", nurse_views.home, name="home"),
    path("wards/<slug:code>/", nurse_views.ward_page, name="ward"),
    path("courses/", review_views.course_list, name="course-list"),
    path("courses/new/", views.course_new, name="course-new"),
    path("courses/<int:pk>/", review_views.course_page, name="course"),
    path("", include("scheduling.urls_nurse")),
    path("", include("scheduling.urls_review")),
]
