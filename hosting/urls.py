from django.urls import path

from hosting import audit_views, views

app_name = "hosting"
urlpatterns = [
    path("", views.home, name="home"),
    path("client/", views.client_area, name="client"),
    path("client/packs/<int:pk>/", views.pack_detail, name="pack"),
    path("domains/<int:pk>/audit/", audit_views.domain_audit, name="domain_audit"),
]
