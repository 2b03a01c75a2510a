from django.urls import path

from lists.views import lists

app_name = "lists"
urlpatterns = [
    path("domains/<int:pk>/lists/", lists.list_list, name="lists"),
    path("domains/<int:pk>/lists/new/", lists.list_create, name="list_create"),
    path("domains/<int:pk>/lists/<int:obj>/", lists.list_modify, name="list_modify"),
    path("domains/<int:pk>/lists/<int:obj>/delete/", lists.list_delete, name="list_delete"),
    path("domains/<int:pk>/lists/<int:obj>/members/", lists.members, name="members"),
]
