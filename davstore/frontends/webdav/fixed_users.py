"""Who may use the share: a fixed ``user -> password`` table, or anyone (anonymous).

Used by wsgidav's ``HTTPAuthenticator`` (Basic and Digest). Passwords are compared in
constant time. With ``users=None`` every request is let in: an explicit choice made by
``create_app(users=None)`` (``--anonymous``).
"""

from __future__ import annotations

import hmac
from typing import Any

from wsgidav.dc.base_dc import BaseDomainController

from davstore.http.basic_auth import parse_basic

__all__ = ["UserDomainController", "basic_credentials_ok", "basic_user"]


def _password_ok(users: dict[str, str], user_name: str, password: str) -> bool:
    expected = users.get(user_name)
    if expected is None:
        hmac.compare_digest(password.encode(), password.encode())  # same time either way
        return False
    return hmac.compare_digest(password.encode(), expected.encode())


def basic_credentials_ok(users: dict[str, str], authorization: str) -> bool:
    """Whether an ``Authorization`` header holds valid Basic credentials of ``users``."""
    return basic_user(users, authorization) is not None


def basic_user(users: dict[str, str], authorization: str) -> str | None:
    """The user whose valid Basic credentials an ``Authorization`` header holds, else None."""
    credentials = parse_basic(authorization)
    if credentials is None:
        return None
    user_name, password = credentials
    return user_name if _password_ok(users, user_name, password) else None


class UserDomainController(BaseDomainController):  # type: ignore[misc]
    """Reads ``users`` and ``realm`` from the ``davstore`` key of wsgidav's config."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        options = config.get("davstore", {})
        self.users: dict[str, str] | None = options.get("users")
        self.realm: str = options.get("realm", "davstore")

    def __str__(self) -> str:
        who = "anonymous" if self.users is None else f"{len(self.users)} user(s)"
        return f"UserDomainController({self.realm!r}, {who})"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return self.realm

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        return self.users is not None

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        if self.users is None:
            return True
        return _password_ok(self.users, user_name, password)

    def supports_http_digest_auth(self) -> bool:
        return True

    def digest_auth_user(self, realm: str, user_name: str, environ: dict[str, Any]) -> str | bool:
        if self.users is None or user_name not in self.users:
            return False
        return str(self._compute_http_digest_a1(realm, user_name, self.users[user_name]))
