"""The reference index: which rows of the site name which files of a share.

The fields: every ``FileField`` (``ImageField`` and any subclass included) declared on a
concrete model of an installed app whose ``storage`` is the share's Storage: the same
object (``storages[alias]``, ``default_storage`` for ``"default"``, a lazy object resolving
to it), or the same class built with the same arguments (``deconstruct()``).

The index: a davstore table (:class:`~davstore.site.models.Reference`, one row per model
row and field naming a file), indexed on ``(share, name)``, so "rows naming NAME" is an
index lookup and "rows naming anything under FOLDER/" an index range
(``'FOLDER/' <= name < 'FOLDER0'``). Measured against queries on the fields themselves in
benchmarks/guard.py: a file field's column has no index, so those scan the whole table.

Kept current by ``post_save`` and ``post_delete`` of those models. ``QuerySet.update``,
``bulk_create``, ``bulk_update`` and raw SQL send no signal: rebuild with ``manage.py
davstore index`` after them. Until a share's index has been built once over the current
fields (:class:`~davstore.site.models.IndexState`), answers come from queries on the
fields themselves: slower, never wrong; the system check ``davstore.W001`` says so.

**What no row names, remembered.** Most guarded changes touch files no row names (a new
upload, an overwrite of a plain file), and the check is then a query that says "no". With
:meth:`ReferenceIndex.follow` (the guard's indexes follow their share's state folder), the
index remembers those answers in the process: a name no row names, a folder nothing under
is named in (then every name below it), and a folder that has named files (then only exact
names are remembered). They are forgotten, all at once:

- when this process changes the table (``post_save``, ``post_delete``, a move's rewrite, a
  rebuild), at once and again when the transaction commits;
- when another process of the host did (the same changes, announced after their commit in
  a small shared file in the share's state folder, :data:`CHANGES_FILE`, as
  :mod:`davstore.vfs.host_peers` does for the files: a check compares 512 bytes, no system
  call);
- after :data:`UNUSED_TTL` seconds anyway (a process that could not open the shared file:
  its changes are seen within that time).

Answers read inside a transaction are not kept (its snapshot may be older than the last
announcement), and a share whose state is in Redis (replicas on several hosts, whose sites
announce nothing here) keeps none: every check asks the table.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.files.storage import InMemoryStorage, Storage
from django.db import connections, models, router, transaction
from django.db.models.functions import Concat, Substr
from django.utils.functional import LazyObject, empty

from davstore.site.models import IndexState, Reference
from davstore.vfs.host_peers import HostPeers
from davstore.vfs.paths import parent
from davstore.vfs.progress import NO_PROGRESS, Progress

__all__ = [
    "CHANGES_FILE",
    "UNUSED_TTL",
    "FileRef",
    "Found",
    "GuardedField",
    "ReferenceIndex",
    "fields_for",
    "same_storage",
]

logger = logging.getLogger(__name__)

#: Rows named in a refusal; the rest are counted.
SHOWN = 20
_CHUNK = 500

#: The file in a share's state folder through which processes tell each other that they
#: changed the share's index (:class:`~davstore.vfs.host_peers.HostPeers` slots).
CHANGES_FILE = "references.bin"
#: Seconds an answer "no row names it" is kept at most (see the module docstring).
UNUSED_TTL = 1.0
#: Answers kept at most (all forgotten past it).
_KEPT = 8192
# What is remembered of a key (a name, or a folder followed by "/"):
_UNUSED = 0  # a name no row names
_EMPTY = 1  # a folder: no row names anything under it
_FULL = 2  # a folder: rows name files under it (ask the names themselves)


def _resolve(storage: Any) -> Any:
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def same_storage(a: Any, b: Any) -> bool:
    """Whether two Storage objects hold the same files: one object, or one class built
    with the same arguments (not for ``InMemoryStorage``, whose files live in the object)."""
    try:
        a, b = _resolve(a), _resolve(b)
    except Exception:  # a lazy storage that cannot be built here (an unknown alias)
        return False
    if a is b:
        return True
    if type(a) is not type(b) or isinstance(a, InMemoryStorage):
        return False  # two InMemoryStorage objects hold different files, whatever options
    try:
        return bool(a.deconstruct() == b.deconstruct())
    except Exception:  # not deconstructible: only identity counts
        return False


@dataclasses.dataclass(frozen=True, slots=True)
class GuardedField:
    """A model field storing names in a share's Storage."""

    model: type[models.Model]
    field: models.FileField

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"

    @property
    def max_length(self) -> int | None:
        return self.field.max_length


def fields_for(storage: Storage) -> tuple[GuardedField, ...]:
    """Every file field of the installed apps whose storage is ``storage``."""
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or meta.swapped or (not meta.managed and meta.auto_created):
            continue
        for field in meta.local_concrete_fields:
            if isinstance(field, models.FileField) and same_storage(field.storage, storage):
                found.append(GuardedField(model, field))
    return tuple(found)


@dataclasses.dataclass(frozen=True, slots=True)
class FileRef:
    """One row naming a file: model label, primary key, field, the name, its admin URL."""

    model: str
    pk: str
    field: str
    name: str
    url: str | None = None

    def as_dict(self) -> dict[str, str]:
        values = {"model": self.model, "pk": self.pk, "field": self.field, "name": self.name}
        if self.url:
            values["url"] = self.url
        return values

    def __str__(self) -> str:
        return f"{self.model} {self.pk} ({self.field})"


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """The first rows found (up to what was asked) and how many there are in all."""

    rows: tuple[FileRef, ...]
    count: int

    def __bool__(self) -> bool:
        return self.count > 0

    def describe(self, name: str) -> str:
        shown = ", ".join(str(row) for row in self.rows)
        more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
        noun = "row" if self.count == 1 else "rows"
        return f"“{name}” is used by {self.count} {noun} of the site: {shown}{more}"


def _prefix_range(folder: str) -> tuple[str, str]:
    """Names strictly under ``folder``: ``folder/ <= name < folder0`` ('0' follows '/')."""
    return folder + "/", folder + "0"


class ReferenceIndex:
    """The index of one share (see the module docstring).

    :param share: the share's name (the ``share`` column of the table).
    :param fields: the fields naming files in its Storage (:func:`fields_for`).
    """

    def __init__(self, share: str, fields: Sequence[GuardedField]) -> None:
        self.share = share
        self.fields = tuple(fields)
        self.by_label = {f.label: f for f in self.fields}
        self.signature = "\n".join(sorted(self.by_label))
        #: The shares serving the same Storage (this one included): a move through one
        #: renames the file for all, so their tables follow (set by the guard).
        self.shares: tuple[str, ...] = (share,)
        self._built = False
        self._lock = threading.Lock()
        #: The check's queries per database alias (see :meth:`used`).
        self._sql: dict[str, tuple[str | None, tuple[str, str, str]]] = {}
        #: The indexes whose table rows a move through this one renames (the shares of
        #: the same Storage, this one included; set by the guard with ``shares``).
        self.related: tuple[ReferenceIndex, ...] = (self,)
        # What no row names (module docstring): key -> (what, until), valid while no
        # process announced a change; _epoch counts the times it was all forgotten.
        self._peers: HostPeers | None = None
        self._to_follow: Path | None = None  # follow(lazily=True): opened at first need
        self._follow_lock = threading.Lock()
        self._known: dict[str, tuple[int, float]] = {}
        self._epoch = 0
        self._known_lock = threading.Lock()
        self._clock: Callable[[], float] = time.monotonic

    def follow(self, state_dir: Path, *, lazily: bool = False) -> bool:
        """Remember what no row names, coherent with the other processes of the host that
        use ``state_dir`` (the share's state folder, created if missing) for this share.
        False (logged) when the shared file cannot be used: every check asks the table.
        ``lazily``: at the first check or change (a process that never guards nor changes
        the index makes no state folder)."""
        if lazily:
            self._to_follow = state_dir
            return True
        self._to_follow = None
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            peers = HostPeers(state_dir / CHANGES_FILE)
        except OSError as exc:
            logger.warning(
                "share %r: the guard asks the database on every change: cannot use %s: %s",
                self.share,
                state_dir / CHANGES_FILE,
                exc.strerror or exc,
            )
            return False
        with self._known_lock:
            old, self._peers = self._peers, peers
            self._forget_locked()
        if old is not None:
            old.close()
        return True

    def _follow_now(self) -> HostPeers | None:
        """The shared file, opened now if :meth:`follow` was asked to wait for this."""
        if self._to_follow is not None:
            with self._follow_lock:  # the others wait until it is open
                state_dir = self._to_follow
                if state_dir is not None:
                    self.follow(state_dir)
        return self._peers

    def close(self) -> None:
        """Stop remembering (the shared file is unmapped)."""
        self._to_follow = None
        with self._known_lock:
            peers, self._peers = self._peers, None
            self._forget_locked()
        if peers is not None:
            peers.close()

    # -- the state of the index ------------------------------------------------------

    def is_built(self) -> bool:
        """Whether the table was rebuilt over the current fields (then trusted)."""
        if self._built:
            return True
        state = IndexState.objects.filter(share=self.share).first()
        built = state is not None and state.signature == self.signature
        self._built = built
        return built

    def rebuild(self, progress: Progress = NO_PROGRESS) -> int:
        """Rebuild the table from the fields; returns the number of references.
        ``progress`` counts the rows written, of the rows naming a file."""
        db = router.db_for_write(Reference)
        with transaction.atomic(using=db):
            Reference.objects.using(db).filter(share=self.share).delete()
            progress.total(sum(_named(gf).count() for gf in self.fields))
            count = 0
            batch: list[Reference] = []
            for ref in self._scan():
                batch.append(Reference(share=self.share, **_columns(ref)))
                if len(batch) >= 5000:
                    Reference.objects.using(db).bulk_create(batch)
                    count += len(batch)
                    progress.advance(len(batch))
                    batch = []
            Reference.objects.using(db).bulk_create(batch)
            count += len(batch)
            progress.advance(len(batch))
            IndexState.objects.using(db).update_or_create(
                share=self.share,
                defaults={
                    "signature": self.signature,
                    "built_at": datetime.datetime.now(tz=datetime.timezone.utc),
                },
            )
            self.changed(db)
        self._built = True
        return count

    def stale(self) -> str | None:
        """Why the table cannot be trusted, or None: never built, built over other fields,
        or a count that differs from the fields' (a bulk update bypassed the signals)."""
        state = IndexState.objects.filter(share=self.share).first()
        if state is None:
            return "it was never built"
        if state.signature != self.signature:
            return "it was built over other fields (models changed since)"
        for gf in self.fields:
            expected = _named(gf).count()
            held = Reference.objects.filter(
                share=self.share, model=gf.model._meta.label, field=gf.field.name
            ).count()
            if expected != held:
                return f"{gf.label}: {expected} rows name files, the index holds {held}"
        return None

    def _scan(self) -> Iterator[FileRef]:
        for gf in self.fields:
            for pk, name in _named(gf).values_list("pk", gf.field.attname).iterator(2000):
                yield FileRef(gf.model._meta.label, str(pk), gf.field.name, name)

    # -- questions -------------------------------------------------------------------

    def used(self, name: str, *, folder: bool = False) -> bool:
        """Whether any row names ``name`` (``folder``: anything under ``name/``): the
        guard's check before every guarded change, most often answered "no".

        With the table trusted, what is remembered (:meth:`known_unused`), else one
        ``SELECT 1 … LIMIT 1`` on the ``(share, name)`` index, run on the database
        driver's own connection (Django's cursor wrapper adds ~10 µs a call, the ORM's
        query building ~300 µs: benchmarks/guard.py, figures in benchmarks/README.md);
        driver errors still come out as Django's ``DatabaseError``. For a name in a folder
        not known yet, the folder is asked first: nothing under it, and no name below it
        needs asking again. Otherwise :meth:`find`.
        """
        if not self.is_built():
            return bool(self.find(name, folder=folder, limit=0))
        if self._peers is None and self._follow_now() is None:
            return self._ask(name, folder=folder)
        epoch = self._known_epoch()
        if self._remembered(name, folder=folder):
            return False
        if folder:
            used = self._ask(name, folder=True)
            self._keep(name + "/", _FULL if used else _EMPTY, epoch)
            return used
        above = parent(name)
        kept = self._known.get(above + "/")
        if kept is None or kept[1] < self._clock():
            if not self._ask(above, folder=True):
                self._keep(above + "/", _EMPTY, epoch)
                return False
            self._keep(above + "/", _FULL, epoch)
        used = self._ask(name, folder=False)
        if not used:
            self._keep(name, _UNUSED, epoch)
        return used

    def known_unused(self, name: str, *, folder: bool = False) -> bool:
        """Whether ``name`` (``folder``: anything under ``name/``) is known, without asking
        the database, to be named by no row: remembered since the last change of the
        index here or announced by another process (see the module docstring)."""
        peers = self._peers or self._follow_now()
        if not self._built or peers is None:
            return False
        if peers.changed():  # as _known_epoch, inline: this is the hot path
            with self._known_lock:
                self._forget_locked()
        return self._remembered(name, folder=folder)

    def _remembered(self, name: str, *, folder: bool) -> bool:
        known, now = self._known, self._clock()
        if not folder:
            kept = known.get(name)
            if kept is not None and kept[1] >= now:
                return True
            name = parent(name)
        while True:
            kept = known.get(name + "/")
            if kept is not None and kept[0] == _EMPTY and kept[1] >= now:
                return True
            if not name:
                return False
            name = parent(name)

    def _known_epoch(self) -> int:
        """Forget everything if another process changed the index; the current epoch."""
        peers = self._peers
        if peers is not None and peers.changed():
            with self._known_lock:
                self._forget_locked()
        return self._epoch

    def _keep(self, key: str, what: int, epoch: int) -> None:
        """Remember ``what`` of ``key``, asked of the table in ``epoch``: not if the index
        changed since (the answer may be older than the change), nor inside a
        transaction (its snapshot may be older than the last announcement)."""
        connection = connections[router.db_for_read(Reference)]
        if connection.in_atomic_block:
            return
        peers = self._peers
        with self._known_lock:
            if peers is None or peers.changed():
                self._forget_locked()
                return
            if self._epoch != epoch:
                return
            if len(self._known) >= _KEPT:
                self._known.clear()
            self._known[key] = (what, self._clock() + UNUSED_TTL)

    def _forget_locked(self) -> None:
        self._known = {}
        self._epoch += 1

    def changed(self, using: str | None = None) -> None:
        """The table changed here: forget what is remembered now and when the transaction
        on ``using`` (default: the table's database) commits, and tell the other
        processes then (they see the change only once it is committed)."""
        with self._known_lock:
            self._forget_locked()
        transaction.on_commit(
            self._committed, using=using or router.db_for_write(Reference), robust=True
        )

    def _committed(self) -> None:
        peers = self._peers or self._follow_now()
        with self._known_lock:
            self._forget_locked()
        if peers is not None:
            peers.announce()

    def _ask(self, name: str, *, folder: bool) -> bool:
        """The table's answer to :meth:`used` (trusted)."""
        args: tuple[str, ...]
        if not folder:
            which, args = 0, (self.share, name)
        elif name:
            which, args = 1, (self.share, *_prefix_range(name))
        else:
            which, args = 2, (self.share,)
        connection = connections[router.db_for_read(Reference)]
        sql = self._sql.get(connection.alias)
        if sql is None:
            sql = self._sql[connection.alias] = _queries(connection)
        with connection.wrap_database_errors:
            connection.ensure_connection()
            if sql[0] is None:  # a driver with named parameters: Django's cursor
                with connection.cursor() as cursor:
                    cursor.execute(sql[1][which], args)
                    return cursor.fetchone() is not None
            cursor = connection.connection.cursor()
            try:
                cursor.execute(sql[1][which], args)
                return cursor.fetchone() is not None
            finally:
                cursor.close()

    def find(self, name: str, *, folder: bool = False, limit: int = SHOWN) -> Found:
        """Rows naming ``name`` (``folder``: anything under ``name/``); the first
        ``limit`` with their admin URLs, and the count."""
        if self.is_built():
            query = Reference.objects.filter(share=self.share)
            if folder:
                low, high = _prefix_range(name)
                query = query.filter(name__gte=low, name__lt=high) if name else query
            else:
                query = query.filter(name=name)
            if folder:
                first = list(query.order_by("name", "model", "pk_value")[: limit + 1])
            else:
                # No ORDER BY in SQL: for one name, SQLite without ANALYZE statistics
                # would order through the unique (share, model, pk_value, field) index
                # and walk the whole share (177 ms at a million rows); the few rows
                # fetched are sorted here.
                first = sorted(query[: limit + 1], key=lambda r: (r.model, r.pk_value))
            count = len(first) if len(first) <= limit else query.count()
            rows = tuple(
                _with_url(FileRef(r.model, r.pk_value, r.field, r.name)) for r in first[:limit]
            )
            return Found(rows, count)
        return self._find_direct(name, folder=folder, limit=limit)

    def _find_direct(self, name: str, *, folder: bool, limit: int) -> Found:
        rows: list[FileRef] = []
        count = 0
        for gf in self.fields:
            query = _named(gf)
            if folder:
                if name:
                    query = query.filter(**{f"{gf.field.attname}__startswith": name + "/"})
            else:
                query = query.filter(**{gf.field.attname: name})
            got = list(query.values_list("pk", gf.field.attname)[: limit + 1])
            count += len(got) if len(got) <= limit else query.count()
            for pk, value in got[: max(0, limit - len(rows))]:
                rows.append(_with_url(FileRef(gf.model._meta.label, str(pk), gf.field.name, value)))
        return Found(tuple(rows), count)

    def all_under(self, name: str, *, folder: bool) -> list[FileRef]:
        """Every row naming ``name`` (or anything under ``name/``), without URLs."""
        if self.is_built():
            query = Reference.objects.filter(share=self.share)
            if folder:
                low, high = _prefix_range(name)
                query = query.filter(name__gte=low, name__lt=high)
            else:
                query = query.filter(name=name)
            return [FileRef(r.model, r.pk_value, r.field, r.name) for r in query.iterator(2000)]
        refs = []
        for gf in self.fields:
            query = _named(gf)
            if folder:
                query = query.filter(**{f"{gf.field.attname}__startswith": name + "/"})
            else:
                query = query.filter(**{gf.field.attname: name})
            for pk, value in query.values_list("pk", gf.field.attname).iterator(2000):
                refs.append(FileRef(gf.model._meta.label, str(pk), gf.field.name, value))
        return refs

    # -- changes ---------------------------------------------------------------------

    def rewrite(self, refs: Iterable[FileRef], source: str, target: str, *, folder: bool) -> None:
        """Point ``refs`` (rows naming ``source``, or names under ``source/``) at
        ``target``: the rows' fields and the table, in the caller's transaction. Uses
        ``QuerySet.update`` (no ``save()``, no signals: the table is updated here)."""
        groups: dict[str, list[Any]] = {}
        for ref in refs:
            groups.setdefault(f"{ref.model}.{ref.field}", []).append(ref.pk)
        for label, pks in groups.items():
            gf = self.by_label[label]
            attname = gf.field.attname
            manager = gf.model._default_manager
            if folder:
                value: Any = Concat(
                    models.Value(target + "/"),
                    Substr(models.F(attname), len(source) + 2),
                    output_field=gf.field,
                )
            else:
                value = target
            typed = [gf.model._meta.pk.to_python(pk) for pk in pks]
            for start in range(0, len(typed), _CHUNK):
                chunk = typed[start : start + _CHUNK]
                manager.filter(pk__in=chunk).update(**{attname: value})
        # The shares over this Storage (their rows name the same files); on the index.
        table = Reference.objects.filter(share__in=self.shares)
        if folder:
            low, high = _prefix_range(source)
            table.filter(name__gte=low, name__lt=high).update(
                name=Concat(
                    models.Value(target + "/"),
                    Substr(models.F("name"), len(source) + 2),
                    output_field=models.CharField(),
                )
            )
        else:
            table.filter(name=source).update(name=target)
        db = router.db_for_write(Reference)
        for index in self.related:
            index.changed(db)

    # -- signals ---------------------------------------------------------------------

    def saved(self, gf: GuardedField, instance: models.Model, using: str) -> None:
        """Keep the table current after ``instance`` was saved."""
        value = getattr(instance, gf.field.attname)
        name = getattr(value, "name", value) or ""
        key = {
            "share": self.share,
            "model": gf.model._meta.label,
            "pk_value": str(instance.pk),
            "field": gf.field.name,
        }
        db = router.db_for_write(Reference)
        table = Reference.objects.using(db)
        if not name:
            table.filter(**key).delete()
        elif not table.filter(**key).update(name=name):
            table.create(name=name, **key)
        self.changed(db)

    def deleted(self, gf: GuardedField, instance: models.Model) -> None:
        db = router.db_for_write(Reference)
        Reference.objects.using(db).filter(
            share=self.share,
            model=gf.model._meta.label,
            pk_value=str(instance.pk),
            field=gf.field.name,
        ).delete()
        self.changed(db)


def _queries(connection: Any) -> tuple[str | None, tuple[str, str, str]]:
    """The three queries of :meth:`ReferenceIndex.used` (a name, a range, a whole share)
    in the placeholders of ``connection``'s driver: ``(paramstyle, queries)``, the
    paramstyle None where the driver names its parameters (then written for Django's
    cursor, ``%s``)."""
    style = getattr(connection.Database, "paramstyle", None)
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(style or "")
    table = connection.ops.quote_name(Reference._meta.db_table)
    # The table name is the model's, quoted by the backend; the values are parameters.
    head = f"SELECT 1 FROM {table} WHERE share = {{0}}"  # noqa: S608
    queries = (
        f"{head} AND name = {{0}} LIMIT 1",
        f"{head} AND name >= {{0}} AND name < {{0}} LIMIT 1",
        f"{head} LIMIT 1",
    )
    return (style if mark else None), tuple(q.format(mark or "%s") for q in queries)  # type: ignore[return-value]


def _named(gf: GuardedField) -> models.QuerySet[Any]:
    """The rows of ``gf``'s model whose field names a file."""
    attname = gf.field.attname
    return gf.model._default_manager.exclude(**{attname: ""}).exclude(
        **{f"{attname}__isnull": True}
    )


def _columns(ref: FileRef) -> dict[str, str]:
    return {"name": ref.name, "model": ref.model, "pk_value": ref.pk, "field": ref.field}


def _with_url(ref: FileRef) -> FileRef:
    """``ref`` with the admin change page of its row, where the admin has one."""
    from django.urls import NoReverseMatch, reverse

    app_label, _, model = ref.model.partition(".")
    try:
        url = reverse(f"admin:{app_label}_{model.lower()}_change", args=[ref.pk])
    except NoReverseMatch:
        return ref
    except Exception:  # no URLconf, no admin
        return ref
    return dataclasses.replace(ref, url=url)
