"""Who may use the share: a fixed ``user -> password`` table, or anyone (anonymous).

:class:`DavstoreAuthenticator` is wsgidav's ``HTTPAuthenticator`` (Basic and Digest) with
two things mended:

- Basic credentials that are not ``base64(UTF-8 "name:password")`` (``Basic !!!``, no
  colon, bad padding, bytes that are not UTF-8) are refused with 401 and the challenge,
  as wrong ones are (wsgidav raised, and the client got a 500);
- Digest nonces are issued and checked by :class:`~davstore.frontends.webdav.digest.
  DigestNonces`: a nonce the server did not issue is refused, an expired one is answered
  ``stale=true``, and each nonce count is accepted once (a captured header cannot be
  replayed). Only ``qop=auth`` is offered and accepted: a request without ``qop`` (RFC
  2069, which has no count) or with ``qop=auth-int`` is refused with a log line.

Passwords are compared in constant time. With ``users=None`` every request is let in: an
explicit choice made by ``create_app(users=None)`` (``--anonymous``).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from wsgidav import util
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from davstore.frontends.webdav.digest import DigestNonces, NonceState
from davstore.http.basic_auth import parse_basic

__all__ = [
    "DavstoreAuthenticator",
    "UserDomainController",
    "basic_credentials_ok",
    "basic_user",
]

logger = logging.getLogger(__name__)

#: environ keys: the Digest fields of the request, and "the challenge says stale=true".
_FIELDS = "davstore.digest.fields"
_STALE = "davstore.digest.stale"


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


class DavstoreAuthenticator(HTTPAuthenticator):  # type: ignore[misc]
    """wsgidav's authenticator with safe Basic parsing and verified Digest nonces (see the
    module docstring). The nonces come from the ``digest_nonces`` of the ``davstore`` key
    of wsgidav's config; without them Digest is not offered."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.nonces: DigestNonces | None = config.get("davstore", {}).get("digest_nonces")
        if self.nonces is None:
            self.accept_digest = self.default_to_digest = False

    # -- Basic ----------------------------------------------------------------------------

    def handle_basic_auth_request(self, environ: dict[str, Any], start_response: Any) -> Any:
        if parse_basic(environ["HTTP_AUTHORIZATION"]) is None:
            logger.warning("malformed Basic credentials from %s", environ.get("REMOTE_ADDR", "?"))
            return self.send_basic_auth_response(environ, start_response)
        return super().handle_basic_auth_request(environ, start_response)

    # -- Digest ---------------------------------------------------------------------------

    def send_digest_auth_response(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.nonces is not None  # Digest is only offered with nonces
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        nonce = self.nonces.issue(realm)
        challenge = f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        if environ.get(_STALE):
            challenge += ", stale=true"
        body = util.to_bytes(self.error_message_401)
        start_response(
            "401 Not Authorized",
            [
                ("WWW-Authenticate", challenge),
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Date", util.get_rfc1123_time()),
            ],
        )
        return [body]

    def handle_digest_auth_request(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.nonces is not None  # accept_digest is False without them
        fields = self._digest_fields(environ["HTTP_AUTHORIZATION"])
        client = environ.get("REMOTE_ADDR", "?")
        qop = fields.get("qop", "")
        if qop.lower() != "auth":
            logger.warning(
                "Digest from %s refused: qop=%r (only qop=auth is offered)", client, qop or None
            )
            return self.send_digest_auth_response(environ, start_response)
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        try:
            state, _ = self.nonces.check(realm, fields.get("nonce", ""))
        except Exception:
            return self._unavailable(start_response)
        if state is NonceState.STALE:
            environ[_STALE] = True
            return self.send_digest_auth_response(environ, start_response)
        if state is not NonceState.OK:
            logger.warning("Digest from %s refused: a nonce this server did not issue", client)
            return self.send_digest_auth_response(environ, start_response)
        environ[_FIELDS] = fields
        try:
            return super().handle_digest_auth_request(environ, start_response)
        except _Unavailable:
            return self._unavailable(start_response)

    def _compute_digest_response(  # noqa: PLR0917 - wsgidav's signature
        self,
        realm: str,
        user_name: str,
        method: str,
        uri: str,
        nonce: str,
        cnonce: str | None,
        qop: str | None,
        nc: str | None,
        environ: dict[str, Any],
    ) -> str | bool:
        """The digest wsgidav compares the request's with; False (refused) when it matches
        but the nonce count was used before or the nonce was forgotten."""
        required = super()._compute_digest_response(
            realm, user_name, method, uri, nonce, cnonce, qop, nc, environ
        )
        fields = environ.get(_FIELDS)
        if not required or fields is None:
            return False
        if not hmac.compare_digest(str(required), fields.get("response", "")):
            return str(required)  # a wrong digest: wsgidav refuses it
        assert self.nonces is not None
        try:
            state = self.nonces.use(realm, nonce, nc or "")
        except Exception as exc:
            raise _Unavailable from exc
        if state is NonceState.OK:
            return str(required)
        if state is NonceState.STALE:
            environ[_STALE] = True
        else:
            logger.warning(
                "Digest from %s refused: nonce count %r of user %r used before (a replay)"
                " or not a count",
                environ.get("REMOTE_ADDR", "?"),
                nc,
                user_name,
            )
        return False

    def _digest_fields(self, header: str) -> dict[str, str]:
        """The fields of a Digest header, parsed as wsgidav parses them."""
        text = header + ","
        found = self._header_parser.findall(text) + self._header_fix_parser.findall(text)
        return {key: value.strip().strip('"') for key, value in found}

    @staticmethod
    def _unavailable(start_response: Any) -> list[bytes]:
        logger.exception("the Digest nonce state cannot be used")
        body = b"503 Service Unavailable\nThe authentication state cannot be reached.\n"
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Retry-After", "5"),
            ],
        )
        return [body]


class _Unavailable(Exception):
    """The nonce state (the secret, the counts' store) could not be used."""
