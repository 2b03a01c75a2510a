from django.urls import path

from mail.views import account, catchall, client, domain, forwards, mailboxes, robots

app_name = "mail"
urlpatterns = [
    path("login/", account.login, name="login"),
    path("logout/", account.logout, name="logout"),
    path("me/", account.me, name="me"),
    path("me/password/", account.me_password, name="me_password"),
    path("password/", account.change_password, name="change_password"),
    path("client/packs/<int:pk>/domains/new/", client.domain_add, name="domain_add"),
    path("client/domains/<int:pk>/postmaster-password/", client.postmaster_reset, name="postmaster_reset"),
    path("domains/<int:pk>/", domain.domain_menu, name="domain"),
    path("domains/<int:pk>/quick/", domain.quick, name="quick"),
    path("domains/<int:pk>/accounts/", mailboxes.mailbox_list, name="mailboxes"),
    path("domains/<int:pk>/accounts/<int:obj>/", mailboxes.mailbox_modify, name="mailbox_modify"),
    path("domains/<int:pk>/accounts/<int:obj>/delete/", mailboxes.mailbox_delete, name="mailbox_delete"),
    path("domains/<int:pk>/accounts/<int:obj>/rename/", mailboxes.mailbox_rename, name="mailbox_rename"),
    path("domains/<int:pk>/catch-all/", catchall.catchall, name="catchall"),
    path("domains/<int:pk>/forwards/", forwards.forward_list, name="forwards"),
    path("domains/<int:pk>/forwards/new/", forwards.forward_create, name="forward_create"),
    path("domains/<int:pk>/forwards/<int:obj>/", forwards.forward_modify, name="forward_modify"),
    path("domains/<int:pk>/forwards/<int:obj>/remove/", forwards.forward_remove_destination,
         name="forward_remove_destination"),
    path("domains/<int:pk>/forwards/<int:obj>/delete/", forwards.forward_delete, name="forward_delete"),
    path("domains/<int:pk>/robots/", robots.robot_list, name="robots"),
    path("domains/<int:pk>/robots/new/", robots.robot_create, name="robot_create"),
    path("domains/<int:pk>/robots/<int:obj>/", robots.robot_modify, name="robot_modify"),
    path("domains/<int:pk>/robots/<int:obj>/delete/", robots.robot_delete, name="robot_delete"),
]
