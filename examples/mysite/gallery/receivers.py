"""React to files changed over WebDAV, on a FUSE mount or in the admin's Files pages."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from davstore.signals import file_changed

logger = logging.getLogger(__name__)


@receiver(file_changed)
def log_change(sender: Any, *, share: str, path: str, action: Any, **kwargs: Any) -> None:
    """Log the change; a real site might regenerate a thumbnail or update a model here."""
    logger.info(
        "%s %s/%s by %s through %s",
        action.value,
        share,
        path,
        kwargs.get("user"),
        kwargs.get("origin"),
    )
