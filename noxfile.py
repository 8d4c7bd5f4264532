"""The Django version matrix: ``nox -s django-4.2 django-5.2`` (``nox -l`` lists them).

Each session installs davstore with its test and fuse extras and one Django LTS, then runs the Django
app's tests (tests/django); extra arguments go to pytest (``nox -s django-4.2 -- -x``).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["django-4.2", "django-5.2"]

#: Django LTS releases davstore supports, with the pip requirement for each.
DJANGO_VERSIONS = {"4.2": "Django>=4.2,<5.0", "5.2": "Django>=5.2,<6.0"}


def _django_tests(session: nox.Session, requirement: str) -> None:
    session.install("-e", ".[test,fuse]", requirement)
    session.run("python", "-m", "django", "--version")
    session.run("pytest", "tests/django", *session.posargs)


for _version, _requirement in DJANGO_VERSIONS.items():

    @nox.session(name=f"django-{_version}", reuse_venv=True)
    def _session(session: nox.Session, requirement: str = _requirement) -> None:
        _django_tests(session, requirement)
