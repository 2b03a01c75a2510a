from django.urls import path

from lists.views import accounts, imports, lists, members, moderation

app_name = "lists"
urlpatterns = [
    path("domains/<int:pk>/accounts/new/", accounts.mailbox_create, name="mailbox_create"),
    path("domains/<int:pk>/lists/", lists.list_list, name="lists"),
    path("domains/<int:pk>/lists/new/", lists.list_create, name="list_create"),
    path("domains/<int:pk>/lists/<int:obj>/", lists.list_modify, name="list_modify"),
    path("domains/<int:pk>/lists/<int:obj>/delete/", lists.list_delete, name="list_delete"),
    path("domains/<int:pk>/lists/<int:obj>/texts/<slug:name>/", lists.list_text, name="list_text"),
    path("domains/<int:pk>/lists/<int:obj>/members/", members.members, name="members"),
    path("domains/<int:pk>/lists/<int:obj>/members/remove/", members.member_remove, name="member_remove"),
    path("domains/<int:pk>/lists/<int:obj>/members/import/", imports.member_import, name="member_import"),
    path("domains/<int:pk>/lists/<int:obj>/members/import/<int:job>/", imports.member_import_status,
         name="member_import_status"),
    path("domains/<int:pk>/lists/<int:obj>/members/export/", imports.member_export, name="member_export"),
    path("domains/<int:pk>/lists/<int:obj>/moderation/", moderation.moderation_queue, name="moderation"),
    path("domains/<int:pk>/lists/<int:obj>/moderation/<int:held>/", moderation.held_decide, name="held_decide"),
]
