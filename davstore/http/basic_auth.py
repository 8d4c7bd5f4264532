"""The one parser of HTTP Basic credentials (RFC 7617) in davstore."""

from __future__ import annotations

import base64
import binascii

__all__ = ["parse_basic"]


def parse_basic(authorization: str, *, strict: bool = True) -> tuple[str, str] | None:
    """``(user name, password)`` from an ``Authorization: Basic ...`` header value, or None
    when it holds no Basic credentials (another scheme, bad base64 or UTF-8, no colon):
    wsgidav's authenticator answers those 401 with the challenge, not 500.

    The user name may be empty (callers that need one check); the password may hold
    colons. ``strict=False`` is the reading of one that only names the user (an access
    log): characters outside base64's alphabet are skipped, and no colon means a user name
    alone (the password ``""``).
    """
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=strict).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user_name, colon, password = decoded.partition(":")
    if not colon and strict:
        return None
    return user_name, password
