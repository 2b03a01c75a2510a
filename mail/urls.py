from django.urls import path

from mail import views

app_name = "mail"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("me/", views.me, name="me"),
    path("me/password/", views.me_password, name="me_password"),
    path("password/", views.change_password, name="change_password"),
    path("domains/<int:pk>/", views.domain_menu, name="domain"),
]
