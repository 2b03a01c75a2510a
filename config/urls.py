from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path

# The admin signs people in through allauth (rate limits, 2FA) rather than its own form.
# (Replacing a bound method of this one instance is what mypy's method-assign flags.)
admin.site.login = login_required(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", include("screens.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]

# The error pages: styled, in the visitor's language, with a way back (screens/views/errors.py).
handler400 = "screens.views.errors.bad_request"
handler403 = "screens.views.errors.permission_denied"
handler404 = "screens.views.errors.page_not_found"
handler500 = "screens.views.errors.server_error"
