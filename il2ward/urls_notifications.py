"""Notifications (pages and API) and ward assignments; included at the site root by il2ward/urls.py."""

from django.urls import path

from il2ward import notification_views as views

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/bell/", views.bell, name="notification-bell"),
    path("notifications/preferences/", views.preferences, name="notification-preferences"),
    path(
        "notifications/acknowledge-reminders/",
        views.notification_acknowledge_reminders_page,
        name="notifications-acknowledge-reminders",
    ),
    path("notifications/<int:pk>/acknowledge/", views.notification_acknowledge_page, name="notification-acknowledge"),
    path("wards/<slug:code>/assignments/", views.ward_assignments, name="ward-assignments"),
    path("api/v1/notifications/", views.NotificationListApi.as_view(), name="api-notifications"),
    path(
        "api/v1/notifications/<int:pk>/acknowledge/",
        views.NotificationAcknowledgeApi.as_view(),
        name="api-notification-acknowledge",
    ),
]
