"""URLs of a project with its own admin site (README, "The Files section"): the Files pages
installed on it with ``davstore.admin.install``, under ``back-office/``."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.urls import path

import davstore.admin


class BackOffice(AdminSite):
    site_header = "Back office"


back_office = BackOffice(name="backoffice")
davstore.admin.install(back_office)  # before back_office.urls is read

urlpatterns = [path("back-office/", back_office.urls)]
