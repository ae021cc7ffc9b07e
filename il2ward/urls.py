from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.storage import staticfiles_storage
from django.shortcuts import redirect
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from il2ward import api, health


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links: send them to the icon rather than log a 404."""
    return redirect(staticfiles_storage.url("favicon.svg"), permanent=True)


api_v1 = [
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
    path("auth/logout/", api.LogoutView.as_view(), name="api-logout"),
    path("auth/logout-all/", api.LogoutAllView.as_view(), name="api-logout-all"),
    path("patients/", api.PatientListCreate.as_view(), name="api-patients"),
    path("patients/<int:pk>/", api.PatientDetail.as_view(), name="api-patient"),
    path("", include("monitoring.api_urls")),
    path("", include("scheduling.api.urls")),
    path("", include("scheduling.export.urls")),
]

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("scheduling.urls")),
    path("", include("il2ward.urls_notifications")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("fhir/", include("inbound.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's script is served from here too (the split view: /api/docs/?script), so no inline script; its
    # page and React components set inline styles, allowed on this page alone (staff and API users, no patient data).
    path(
        "api/docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler404 = "il2ward.api.not_found"
