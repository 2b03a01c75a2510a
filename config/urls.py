from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path

# The admin signs people in through allauth (rate limits, 2FA) rather than its own form.
admin.site.login = login_required(admin.site.login)

urlpatterns = [
    path("", include("mail.urls")),
    path("", include("lists.urls")),
    path("", include("hosting.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]
