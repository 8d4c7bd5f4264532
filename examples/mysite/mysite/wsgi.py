"""The example site's WSGI application, with the davstore shares under ``/dav/``
(``/dav/media/``, ``/dav/static/``): the site and the shares use the same Storage objects.

``python manage.py runserver`` serves this too (``WSGI_APPLICATION``).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from davstore.wsgi import with_davstore

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = with_davstore(get_wsgi_application(), prefix="/dav/")
