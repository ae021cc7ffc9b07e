"""Export endpoints under /api/v1/ (API.md, Export) and the calendar subscription links."""

from django.urls import path

from scheduling.export import views as export_views

urlpatterns = [
    path("courses/<int:pk>/fhir/", export_views.CourseFhir.as_view(), name="api-course-fhir"),
    path("courses/<int:pk>/calendar.ics", export_views.CourseCalendar.as_view(), name="api-course-calendar"),
    path("calendar/<str:token>/courses/<int:pk>.ics", export_views.CalendarFeed.as_view(), name="api-calendar-feed"),
    path("calendar-tokens/", export_views.CalendarTokens.as_view(), name="api-calendar-tokens"),
    path(
        "calendar-tokens/<int:pk>/revoke/",
        export_views.CalendarTokenRevoke.as_view(),
        name="api-calendar-token-revoke",
    ),
]
