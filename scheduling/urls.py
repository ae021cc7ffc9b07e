"""The pages, by who uses them: the nurse's (mar) and the oncologist's (review). The API is in il2ward/urls.py."""

from django.urls import include, path

urlpatterns = [
    path("", include("scheduling.mar.urls")),
    path("", include("scheduling.review.urls")),
]
