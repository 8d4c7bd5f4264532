"""What the admin and ``manage.py davstore check`` tell a person about a share's files.

- :func:`usage`: the rows naming each of a page of files ("Used by: N"), in one query for
  the page (two per guarded field while the index is not built).
- :func:`related`: the objects behind some rows, for the delete and rename confirmations
  (model name, ``str(obj)``, admin change page), as Django's delete confirmation shows them.
- :func:`check`: orphans (files no row names, older than a minimum age) and missing files
  (rows naming a file the share does not hold). The files come from the VFS listing (every
  store alike: S3, GCS and Azure list through their adapters, never ``Storage.listdir``),
  walked up to ``limit`` entries; past it the report says it is incomplete and only the
  rows' own files are looked up (each a ``stat``, up to ``limit`` of them). Bulk updates
  bypass the index's signals: the check reads the index as it is, so rebuild it first
  (``manage.py davstore index``) when the system check ``davstore.W001`` says it is stale.
- :func:`trash_orphans`: a report's orphans moved into the share's trash, never deleted
  outright (the admin's "Move orphans to the trash", ``manage.py davstore check
  --trash-orphans``).
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from davstore.errors import DavstoreError, NotSupported
from davstore.site.models import Reference
from davstore.site.references import FileRef, Found, ReferenceIndex, _named, _with_url
from davstore.vfs.paths import ROOT
from davstore.vfs.progress import NO_PROGRESS, Progress
from davstore.vfs.trash import trash_of

if TYPE_CHECKING:
    from davstore.vfs import VFS, Entry

__all__ = ["Orphan", "Related", "Report", "Trashed", "check", "related", "trash_orphans", "usage"]

#: Rows named per file on a listing page (the count says how many there are).
PER_FILE = 5
#: Entries a check walks, and rows it looks up one by one past an incomplete walk.
LIMIT = 100_000
#: Files younger than this (seconds) are never orphans: the site may be saving them.
MIN_AGE = 24 * 3600
_CHUNK = 500


def _chunks(names: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(names), _CHUNK):
        yield names[start : start + _CHUNK]


def usage(
    index: ReferenceIndex, names: Iterable[str], *, per_file: int = PER_FILE
) -> dict[str, Found]:
    """For each of ``names`` some row names, the first ``per_file`` rows (with admin URLs)
    and the count. Names no row names are absent from the answer."""
    names = list(dict.fromkeys(names))
    found: dict[str, tuple[list[FileRef], int]] = {}
    if index.is_built():
        for chunk in _chunks(names):
            query = (
                Reference.objects.filter(share=index.share, name__in=chunk)
                .annotate(
                    rank=Window(RowNumber(), partition_by=F("name"), order_by=F("pk").asc()),
                    total=Window(Count("pk"), partition_by=F("name")),
                )
                .filter(rank__lte=per_file)
                .values_list("name", "model", "pk_value", "field", "total")
            )
            for name, model, pk, field, total in query:
                rows, _ = found.setdefault(name, ([], total))
                rows.append(FileRef(model, pk, field, name))
                found[name] = (rows, total)
    else:
        for gf in index.fields:
            attname = gf.field.attname
            for chunk in _chunks(names):
                base = _named(gf).filter(**{f"{attname}__in": chunk})
                counts = dict(base.values_list(attname).annotate(n=Count("pk")).order_by())
                for name, total in counts.items():
                    rows, before = found.get(name, ([], 0))
                    found[name] = (rows, before + total)
                for pk, name in base.values_list("pk", attname).order_by("pk"):
                    rows, _ = found[name]
                    if len(rows) < per_file:
                        rows.append(FileRef(gf.model._meta.label, str(pk), gf.field.name, name))
    return {
        name: Found(tuple(_with_url(r) for r in rows), total)
        for name, (rows, total) in found.items()
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Related:
    """One referencing object as a confirmation lists it: "Photo: hero" linked to its
    change page, and the field naming the file."""

    ref: FileRef
    verbose_name: str
    text: str

    @property
    def url(self) -> str | None:
        return self.ref.url


def related(found: Found) -> list[Related]:
    """The objects behind ``found.rows`` (one query per model); a row whose object is gone
    since is listed by its label and pk."""
    by_model: dict[str, list[FileRef]] = {}
    for ref in found.rows:
        by_model.setdefault(ref.model, []).append(ref)
    texts: dict[tuple[str, str], tuple[str, str]] = {}
    for label, refs in by_model.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        meta = model._meta
        pks = [meta.pk.to_python(r.pk) for r in refs]
        for obj in model._default_manager.filter(pk__in=pks):
            texts[(label, str(obj.pk))] = (str(meta.verbose_name).capitalize(), str(obj))
    out = []
    for ref in found.rows:
        verbose, text = texts.get((ref.model, ref.pk), (ref.model, f"#{ref.pk}"))
        out.append(Related(ref, verbose, text))
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Orphan:
    """A file no row names."""

    path: str
    size: int | None
    modified: datetime.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    """What :func:`check` found in one share.

    :param guarded: whether some model field stores files in the share (if not, every
        file is the site's business, and no file is an orphan).
    :param complete: whether the walk saw the whole share (else orphans are those among
        the first ``scanned`` entries).
    """

    share: str
    guarded: bool
    orphans: tuple[Orphan, ...]
    missing: tuple[FileRef, ...]
    scanned: int
    complete: bool
    min_age: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "guarded": self.guarded,
            "complete": self.complete,
            "scanned": self.scanned,
            "min_age": self.min_age,
            "orphans": [
                {
                    "path": o.path,
                    "size": o.size,
                    "modified": o.modified.isoformat() if o.modified else None,
                }
                for o in self.orphans
            ],
            "missing": [r.as_dict() for r in self.missing],
        }

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.missing


def check(
    share: str,
    vfs: VFS,
    index: ReferenceIndex | None,
    *,
    min_age: float = MIN_AGE,
    limit: int = LIMIT,
    now: float | None = None,
    progress: Progress = NO_PROGRESS,
) -> Report:
    """Orphans and missing files of one share (see the module docstring); ``progress``
    counts the share's entries listed, then the rows looked at."""
    if index is None:
        return Report(share, False, (), (), 0, True, min_age)
    cutoff = (time.time() if now is None else now) - min_age
    seen: set[str] = set()
    orphans: list[Orphan] = []
    batch: list[Entry] = []
    scanned = 0
    complete = True

    def judge(entries: list[Entry]) -> None:
        named = usage(index, [e.name for e in entries], per_file=1)
        for entry in entries:
            if entry.name in named:
                continue
            if entry.mtime is not None and entry.mtime > cutoff:
                continue  # young: the site may be about to save the row naming it
            modified = (
                datetime.datetime.fromtimestamp(entry.mtime, tz=datetime.timezone.utc)
                if entry.mtime is not None
                else None
            )
            orphans.append(Orphan(entry.name, entry.size, modified))

    for entry in _walk(vfs):
        progress.advance()
        scanned += 1
        if scanned > limit:
            complete = False
            break
        if entry.is_dir:
            continue
        seen.add(entry.name)
        batch.append(entry)
        if len(batch) >= _CHUNK:
            judge(batch)
            batch = []
    if batch:
        judge(batch)

    missing: list[FileRef] = []
    looked_up = 0
    for ref in _all_refs(index):
        progress.advance()
        if ref.name in seen:
            continue
        if not complete:
            looked_up += 1
            if looked_up > limit:
                break
            try:
                if vfs.lookup(ref.name) is not None:
                    continue
            except DavstoreError:
                pass  # a name the share cannot hold (too long, reserved): missing too
        missing.append(_with_url(ref))
    orphans.sort(key=lambda o: o.path)
    missing.sort(key=lambda r: (r.name, r.model, r.pk))
    return Report(
        share, True, tuple(orphans), tuple(missing), min(scanned, limit), complete, min_age
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Trashed:
    """What :func:`trash_orphans` did: the orphans moved into the trash, and those left
    where they are with the reason (a row names it now, the store failed, ...)."""

    moved: tuple[Orphan, ...]
    failed: tuple[tuple[Orphan, str], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "trashed": [o.path for o in self.moved],
            "not_trashed": [{"path": o.path, "reason": why} for o, why in self.failed],
        }


def trash_orphans(vfs: VFS, report: Report, paths: Iterable[str] | None = None) -> Trashed:
    """Move ``report``'s orphans (those among ``paths`` only, when given) into the
    share's trash, each as a delete through ``vfs`` by the current actor
    (:func:`davstore.vfs.acting_as`): the site guard still refuses a file a row has come
    to name since the report, and the activity log and ``file_changed`` see each one.

    Never deletes outright: without a trash on ``vfs`` (``TRASH: False``) it raises
    NotSupported and moves nothing."""
    if trash_of(vfs) is None:
        raise NotSupported(
            "", "this share has no trash (TRASH is False): orphans are never deleted outright"
        )
    wanted = None if paths is None else set(paths)
    moved: list[Orphan] = []
    failed: list[tuple[Orphan, str]] = []
    for orphan in report.orphans:
        if wanted is not None and orphan.path not in wanted:
            continue
        try:
            vfs.remove(orphan.path)
        except DavstoreError as exc:
            failed.append((orphan, exc.reason))
            continue
        moved.append(orphan)
    return Trashed(tuple(moved), tuple(failed))


def _walk(vfs: VFS) -> Iterator[Entry]:
    """Every entry of the share through the VFS listing, folders before what they hold."""
    yield from vfs.walk(ROOT)


def _all_refs(index: ReferenceIndex) -> Iterator[FileRef]:
    if index.is_built():
        query = Reference.objects.filter(share=index.share).order_by("name")
        for model, pk, field, name in query.values_list(
            "model", "pk_value", "field", "name"
        ).iterator(2000):
            yield FileRef(model, pk, field, name)
        return
    for gf in index.fields:
        for pk, name in _named(gf).values_list("pk", gf.field.attname).iterator(2000):
            yield FileRef(gf.model._meta.label, str(pk), gf.field.name, name)
