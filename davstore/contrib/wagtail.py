"""Wagtail's images stay right when people change their files through a share.

Connected by davstore's app (:meth:`davstore.apps.DavstoreConfig.ready`) when
``wagtail.images`` is installed:

- :data:`davstore.signals.file_replaced` naming an image's ``file`` (a model subclassing
  ``AbstractImage``: ``wagtailimages.Image`` or the site's own): the image's renditions are
  deleted (rows, files and cache entries, by Wagtail's own ``post_delete`` handlers), so
  the next page renders them from the new picture; its ``file_size``, ``file_hash`` and
  focal point, which described the old picture, are cleared (Wagtail fills the first two
  again when it needs them). New content over a rendition's own file deletes that
  rendition: it is rendered again from the original.
- :data:`davstore.signals.file_changed` for a move: the guard rewrote the rows of the moved
  renditions with ``QuerySet.update`` (no signal), so their entries in Wagtail's renditions
  cache still name the old place; they are purged. A moved original needs nothing: its
  renditions are files of their own.

What a receiver raises is logged by the sender and never undoes the change. The receivers
run in the process that made the change (``manage.py davstore serve``, the mount, the
admin's): Wagtail's renditions cache is purged there, so a site in another process must
share it (a cache server, as ``CACHES["renditions"]`` usually is in production).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db.models import Q

__all__ = ["connect", "on_file_changed", "on_file_replaced"]

logger = logging.getLogger(__name__)


def _models(labels: Iterable[str]) -> dict[str, Any]:
    found = {}
    for label in set(labels):
        try:
            found[label] = apps.get_model(label)
        except LookupError:
            continue
    return found


def on_file_replaced(sender: Any, *, path: str, references: Iterable[Any], **kwargs: Any) -> None:
    """Drop what Wagtail derived from the old content of ``path``."""
    from wagtail.images.models import AbstractImage, AbstractRendition

    refs = [r for r in references if r.field == "file"]
    models = _models(r.model for r in refs)
    for label, model in models.items():
        pks = [model._meta.pk.to_python(r.pk) for r in refs if r.model == label]
        if issubclass(model, AbstractImage):
            rendition_model = model.get_rendition_model()
            renditions = rendition_model._default_manager.filter(image_id__in=pks)
            deleted, _ = renditions.delete()
            model._default_manager.filter(pk__in=pks).update(
                file_size=None,
                file_hash="",
                focal_point_x=None,
                focal_point_y=None,
                focal_point_width=None,
                focal_point_height=None,
            )
            logger.info("new content at %r: deleted %d renditions of %s", path, deleted, label)
        elif issubclass(model, AbstractRendition):
            deleted, _ = model._default_manager.filter(pk__in=pks).delete()
            logger.info("new content over the rendition %r: deleted it", path)


def on_file_changed(
    sender: Any, *, action: Any, target: str | None, is_dir: bool, **kwargs: Any
) -> None:
    """Purge the cached renditions a move's rewrite left naming the old place."""
    from davstore.vfs.events import Action

    if action is not Action.MOVED or target is None:
        return
    from wagtail.images import get_image_model

    from davstore.site.references import same_storage

    rendition_model = get_image_model().get_rendition_model()
    field = rendition_model._meta.get_field("file")
    if not same_storage(field.storage, sender.storage):
        return
    where = Q(file__startswith=target + "/") if is_dir else Q(file=target)
    query = rendition_model._default_manager.filter(where).select_related("image")
    for rendition in query.iterator(500):
        rendition.purge_from_cache()


def connect() -> None:
    """Connect the receivers (once)."""
    from davstore.signals import file_changed, file_replaced

    file_replaced.connect(on_file_replaced, dispatch_uid="davstore-wagtail-replaced")
    file_changed.connect(on_file_changed, dispatch_uid="davstore-wagtail-changed")
