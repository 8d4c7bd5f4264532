"""A small Wagtail site (images, renditions, documents, an article page showing them) whose
media is a davstore share, for the site guard's tests (tests/django/test_wagtail.py).

It runs in processes of its own (Wagtail's apps change what every test's share guards):
``DJANGO_SETTINGS_MODULE=tests.wagtailsite.settings``, with ``WAGTAILSITE_ROOT`` a scratch
folder (database, media) and ``WAGTAILSITE_S3`` (JSON: S3Storage options) to keep the media
in a bucket instead of ``WAGTAILSITE_ROOT/media``.
"""
