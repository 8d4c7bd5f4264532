"""The one options definition (davstore/options.py): every option is where it says, and
each one that both doors have works the same through ``davstore serve|mount`` and
``manage.py davstore serve|mount``, proved on what is served (the WebDAV application, the
VFS, the mount options, the listening server), and through ``DAVSTORE``.

The drift this definition ends: ``manage.py davstore serve --mac-metadata store`` was
parsed and ignored (``test_each_option_works_the_same_through_both_doors[mac_metadata]``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test.utils import override_settings
from wsgidav.lock_man.lock_storage import LockStorageDict

from davstore.cli import build_parser
from davstore.cli.mount import mount_vfs
from davstore.cli.serve import build_app, open_served_share
from davstore.conf import get_config, parse_config
from davstore.frontends.webdav import DavstoreApp
from davstore.management.commands.davstore import Command as ManageCommand
from davstore.options import (
    OPTIONS,
    Command,
    Door,
    Option,
    Scope,
    keys,
    markdown_table,
    options_page,
)
from davstore.permissions import can_read, can_write
from davstore.serving.arguments import SELECTION, mount_options
from davstore.serving.listen import listen, serve_metrics
from davstore.shares import get_shares
from davstore.shares_app import SharesApp
from davstore.vfs.policy import Kind


@dataclass(frozen=True)
class Proof:
    """How one option shows: ``argv`` given to both doors, ``setting`` the same value in
    ``DAVSTORE`` (options with a key), ``seen(served) -> value`` on what was built, and
    ``expected`` that value (a function of the door's state folder for ``--state-dir``)."""

    argv: tuple[str, ...]
    seen: Callable[[Served], Any]
    expected: Any
    setting: Any = None
    #: Other ``DAVSTORE`` keys the setting needs to show (``METRICS_HOST`` needs a port).
    with_setting: dict[str, Any] = field(default_factory=dict)


@dataclass
class Served:
    """What one door built for one share."""

    door: Door
    args: argparse.Namespace
    app: DavstoreApp | None = None
    server_kwargs: dict[str, Any] | None = None
    mount: Any = None
    vfs: Any = None
    shares_app: SharesApp | None = None
    metrics: dict[str, Any] | None = None
    state_root: Path | None = None


def _provider(served: Served) -> Any:
    assert served.app is not None
    return next(iter(served.app.wsgidav.provider_map.values()))


def _app(served: Served) -> DavstoreApp:
    assert served.app is not None
    return served.app


def _kwargs(served: Served) -> dict[str, Any]:
    assert served.server_kwargs is not None
    return served.server_kwargs


def _metrics(served: Served) -> dict[str, Any]:
    assert served.metrics is not None, "nothing was served on a metrics port"
    return served.metrics


#: One proof per option that both doors have; a new option without one fails
#: test_every_option_of_both_doors_has_a_proof.
PROOFS: dict[str, Proof] = {
    "read_only": Proof(
        ("--read-only",),
        lambda s: s.mount.read_only if s.mount else _app(s).vfs.read_only,
        True,
        True,
    ),
    "cache_ttl": Proof(
        ("--cache-ttl", "7"),
        lambda s: s.mount.cache_ttl if s.mount else _app(s).vfs.cache.ttl,
        7.0,
        7,
    ),
    "revalidate": Proof(
        ("--revalidate", "9"),
        lambda s: s.vfs.revalidate_interval if s.mount else _app(s).vfs.revalidate_interval,
        9.0,
        9,
    ),
    "lock_storage": Proof(
        ("--lock-storage", "memory:"),
        lambda s: type(_app(s).wsgidav.lock_manager.storage),
        LockStorageDict,
        "memory:",
    ),
    "property_storage": Proof(
        ("--property-storage", "memory:"),
        lambda s: _app(s).wsgidav.prop_manager._path,
        ":memory:",
        "memory:",
    ),
    "state_dir": Proof(
        ("--state-dir", "{state}"),
        lambda s: s.state_root is not None and (s.state_root / "properties.sqlite3").exists(),
        True,
    ),
    "mac_metadata": Proof(
        ("--mac-metadata", "store"), lambda s: _app(s).plain_put.hide_mac_metadata, False, "store"
    ),
    "max_upload_size": Proof(
        ("--max-upload-size", "2K"),
        lambda s: s.vfs.max_file_size if s.mount else _provider(s).max_upload_size,
        2048,
        2048,
    ),
    "propfind_depth_infinity": Proof(
        ("--propfind-depth-infinity", "stream"),
        lambda s: _provider(s).limits.depth_infinity,
        True,
        "stream",
    ),
    "max_properties": Proof(
        ("--max-properties", "7"), lambda s: _provider(s).limits.max_properties, 7, 7
    ),
    "max_properties_per_request": Proof(
        ("--max-properties-per-request", "5"),
        lambda s: _provider(s).limits.max_properties_per_request,
        5,
        5,
    ),
    "max_lock_timeout": Proof(
        ("--max-lock-timeout", "600"),
        lambda s: _app(s).wsgidav.lock_manager.storage.max_timeout,
        600,
        600,
    ),
    "header_timeout": Proof(("--header-timeout", "5"), lambda s: _kwargs(s)["header_timeout"], 5.0),
    "max_connections_per_client": Proof(
        ("--max-connections-per-client", "7"),
        lambda s: _kwargs(s)["max_connections_per_client"],
        7,
    ),
    "threads_per_client": Proof(
        ("--threads-per-client", "3"), lambda s: _kwargs(s)["threads_per_client"], 3
    ),
    "metrics_port": Proof(("--metrics-port", "9100"), lambda s: _metrics(s)["port"], 9100, 9100),
    "metrics_host": Proof(
        ("--metrics-port", "9100", "--metrics-host", "127.0.0.2"),
        lambda s: _metrics(s)["host"],
        "127.0.0.2",
        "127.0.0.2",
        {"METRICS_PORT": 9100},
    ),
    "worker_metrics_socket": Proof(
        ("--worker-metrics-socket", "7"), lambda s: s.args.worker_metrics_socket, 7
    ),
    "host": Proof(("--host", "127.0.0.2"), lambda s: _kwargs(s)["host"], "127.0.0.2"),
    "port": Proof(("--port", "9"), lambda s: _kwargs(s)["port"], 9),
    "threads": Proof(("--threads", "3"), lambda s: _kwargs(s)["threads"], 3),
    "timeout": Proof(("--timeout", "5"), lambda s: _kwargs(s)["timeout"], 5),
    "busy_poll": Proof(("--busy-poll", "50"), lambda s: _kwargs(s)["busy_poll"], 50e-6),
    "tls_cert": Proof(("--tls-cert", "c.pem"), lambda s: _kwargs(s)["tls_cert"], "c.pem"),
    "tls_key": Proof(("--tls-key", "k.pem"), lambda s: _kwargs(s)["tls_key"], "k.pem"),
    "grace_period": Proof(("--grace-period", "3"), lambda s: _kwargs(s)["shutdown_timeout"], 3.0),
    "workers": Proof(("--workers", "3"), lambda s: s.args.workers, 3),
    "worker_socket": Proof(("--worker-socket", "7"), lambda s: s.args.worker_socket, 7),
    "foreground": Proof(("--foreground",), lambda s: s.mount.foreground, True),
    "allow_other": Proof(("--allow-other",), lambda s: s.mount.allow_other, True),
    "uid": Proof(("--uid", "12"), lambda s: s.mount.uid, 12),
    "gid": Proof(("--gid", "13"), lambda s: s.mount.gid, 13),
    "trash": Proof(("--no-trash",), lambda s: _trash(s) is not None, False, False),
    "trash_days": Proof(("--trash-days", "7"), lambda s: _trash(s).retention.days, 7.0, 7),
    "trash_versions": Proof(
        ("--trash-versions", "2"), lambda s: _trash(s).retention.versions, 2, 2
    ),
    "trash_max_size": Proof(
        ("--trash-max-size", "1K"), lambda s: _trash(s).retention.max_size, 1024, 1024
    ),
    "verbose": Proof(("-vv",), lambda s: s.args.verbose, 2),
    "log_level": Proof(("--log-level", "warning"), lambda s: s.args.log_level, "WARNING"),
}

#: Arguments that are not share options: which store (the standalone door) or which share
#: (the management command), and where to mount.
NOT_OPTIONS = {*SELECTION, "shares", "share", "mountpoint", "help"}


def _both_doors() -> list[Option]:
    return [o for o in OPTIONS if o.flags and o.doors is Door.BOTH]


def _cli_parser(command: Command) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[(command.name or "").lower()]  # type: ignore[no-any-return]


def _manage_parser(command: Command) -> argparse.ArgumentParser:
    parser = ManageCommand().create_parser("manage.py", "davstore")
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[(command.name or "").lower()]  # type: ignore[no-any-return]


def _parsers() -> Iterator[tuple[Command, Door, argparse.ArgumentParser]]:
    for command in (Command.SERVE, Command.MOUNT, Command.UMOUNT):
        yield command, Door.CLI, _cli_parser(command)
    for command in (Command.SERVE, Command.MOUNT):
        yield command, Door.MANAGE, _manage_parser(command)


def _trash_parsers() -> Iterator[tuple[Command, Door, argparse.ArgumentParser]]:
    """``davstore trash ACTION`` and ``manage.py davstore trash ACTION``, each action."""
    for door, parser in (
        (Door.CLI, _cli_parser(Command.TRASH)),
        (Door.MANAGE, _manage_parser(Command.TRASH)),
    ):
        actions = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for child in actions.choices.values():
            yield Command.TRASH, door, child


def test_every_option_is_on_the_doors_and_commands_it_names() -> None:
    for command, door, parser in [*_parsers(), *_trash_parsers()]:
        actions = {a.dest: a for a in parser._actions}
        for item in OPTIONS:
            if command is Command.TRASH and command not in item.commands:
                continue  # the trash's actions take the storage selection and --state-dir
            wanted = bool(item.flags) and command in item.commands and door in item.doors
            assert (item.name in actions) is wanted, (item.name, command, door)
            if wanted:
                assert tuple(actions[item.name].option_strings) == item.option_strings


def test_davstore_activity_finds_the_log_with_options_of_the_definition() -> None:
    """``davstore activity`` takes where the log is as ``serve`` takes it: ``--state-dir``
    was a copy of its own, and ``--lock-storage`` (the Redis stream replicas share) was
    missing. (``manage.py davstore activity`` reads the share's ``DAVSTORE`` entry.)"""
    actions = {a.dest: a for a in _cli_parser(Command.ACTIVITY)._actions}
    taken = set()
    for item in OPTIONS:
        if item.flags and Command.ACTIVITY in item.commands and Door.CLI in item.doors:
            assert tuple(actions[item.name].option_strings) == item.option_strings
            assert actions[item.name].help == item.help
            taken.add(item.name)
        else:
            assert item.name not in actions, item.name
    assert taken == {"state_dir", "lock_storage", "property_storage"}


def test_the_parsers_have_no_option_outside_the_definition() -> None:
    names = {o.name for o in OPTIONS}
    for command, door, parser in _parsers():
        stray = {a.dest for a in parser._actions} - names - NOT_OPTIONS
        assert stray == set(), (command, door)


def test_each_help_shows_each_group_once() -> None:
    """``davstore serve --help`` showed two "network:" groups (issue 24 item 7): the
    network options and ``--metrics-port`` were added to groups of their own with one name
    before the options were generated from one definition (5755551^ prints it twice)."""
    for command, door, parser in _parsers():
        headings = re.findall(r"^(\S[^\n]*):$", parser.format_help(), re.MULTILINE)
        assert ("network" in headings) is (command is Command.SERVE), (command, door)
        assert len(headings) == len(set(headings)), (command, door, headings)


def test_an_option_on_one_door_says_why() -> None:
    for item in OPTIONS:
        if item.flags and item.doors is not Door.BOTH:
            assert item.only, item.name


def test_every_option_of_both_doors_has_a_proof() -> None:
    assert sorted(o.name for o in _both_doors()) == sorted(PROOFS)


def test_the_docs_table_lists_every_visible_option() -> None:
    table = markdown_table()
    for item in OPTIONS:
        if item.hidden:
            continue
        assert (item.flag or f"`{item.key}`") in table


@pytest.fixture
def share_root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


def _argv(proof: Proof, state: Path) -> list[str]:
    return [arg.replace("{state}", str(state)) for arg in proof.argv]


def _built(served: Served, command: Command, build: Callable[[], Any]) -> Served:
    """Build what ``command`` would serve (the app, the server's arguments, the mount
    options) from ``served.args``; a stand-in records the server's arguments."""
    recorded: dict[str, Any] = {}

    class Recorder:
        shutdown_timeout = 0.0

        def prepare(self) -> None:
            pass

        def serve(self) -> None:
            pass

        def stop(self) -> None:
            pass

    def make_server(app: Any, host: str, port: int, **kwargs: Any) -> Recorder:
        recorded.update(host=host, port=port, **kwargs)
        return Recorder()

    def make_metrics_server(app: Any, host: str, port: int, **kwargs: Any) -> Recorder:
        served.metrics = {"host": host, "port": port, "app": app}
        recorder = Recorder()
        recorder.bind_addr = (host, port)  # type: ignore[attr-defined]
        return recorder

    if command is Command.SERVE:
        if served.args.tls_cert or served.args.tls_key:
            served.args.tls_cert = served.args.tls_cert or "c.pem"
            served.args.tls_key = served.args.tls_key or "k.pem"
        served.app = build()
        # An inherited socket is the worker's own: never wrap a number the test made up.
        without_socket = argparse.Namespace(
            **{**vars(served.args), "worker_socket": None, "worker_metrics_socket": None}
        )
        server = listen(make_server, served.app, without_socket)
        recorded["shutdown_timeout"] = server.shutdown_timeout
        recorded["busy_poll"] = recorded.get("busy_poll")
        served.server_kwargs = recorded
        observed = argparse.Namespace(endpoints=object())
        serve_metrics(observed, without_socket, make_server=make_metrics_server)()
    else:
        served.mount, served.vfs = build()
    return served


def _through_cli(command: Command, argv: list[str], root: Path) -> Served:
    args = build_parser().parse_args(
        [(command.name or "").lower(), *_cli_root(command, root), *argv]
    )
    served = Served(Door.CLI, args)

    def build() -> Any:
        if command is Command.MOUNT:
            return mount_options(args), mount_vfs(args)
        share, trash, served.state_root = open_served_share(args)
        trash.close()
        return build_app(args, share, served.state_root, None)

    return _built(served, command, build)


def _cli_root(command: Command, root: Path) -> list[str]:
    return [str(root.parent / "mnt"), str(root)] if command is Command.MOUNT else [str(root)]


def _through_manage(
    command: Command, argv: list[str], root: Path, davstore: dict[str, Any]
) -> Served:
    storages = {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "files": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
        # The store tests.django.siteapp's file fields name: the site guard's.
        "site": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root.parent / "site")},
        },
    }
    share_settings = {"STORAGE": "files", **davstore.pop("share", {})}
    with override_settings(
        STORAGES=storages, DAVSTORE={"SHARES": {"files": share_settings}, **davstore}
    ):
        words = ["serve", *argv] if command is Command.SERVE else ["mount", "files", "/mnt", *argv]
        parsed = ManageCommand().create_parser("manage.py", "davstore").parse_args(words)
        args = argparse.Namespace(**vars(parsed))
        served = Served(Door.MANAGE, args)
        manage = ManageCommand()
        (share,) = get_shares().values()

        def build() -> Any:
            if command is Command.MOUNT:
                return manage.mount_options(args, share), manage.mount_vfs(args, share)
            config = get_config()
            manage.top_options(args, config)
            items = manage.share_options(args, [share])
            served.state_root = items[0].state_dir
            served.shares_app = manage.shares_app(items, config)
            return served.shares_app.apps["files"]

        return _built(served, command, build)


def _commands(item: Option) -> list[Command]:
    return [c for c in (Command.SERVE, Command.MOUNT) if c in item.commands]


@pytest.mark.parametrize("item", _both_doors(), ids=lambda o: o.name)
def test_each_option_works_the_same_through_both_doors(
    item: Option, share_root: Path, tmp_path: Path
) -> None:
    proof = PROOFS[item.name]
    for command in _commands(item):
        cli = _through_cli(command, _argv(proof, tmp_path / "cli-state"), share_root)
        manage = _through_manage(command, _argv(proof, tmp_path / "manage-state"), share_root, {})
        try:
            assert proof.seen(cli) == proof.expected, (command, "davstore")
            assert proof.seen(manage) == proof.expected, (command, "manage.py davstore")
        finally:
            for served in (cli, manage):
                if served.app is not None:
                    served.app.close()


def _configured() -> list[Option]:
    return [o for o in _both_doors() if o.key is not None and PROOFS[o.name].setting is not None]


@pytest.mark.parametrize("item", _configured(), ids=lambda o: o.name)
def test_each_share_setting_in_davstore_is_served(
    item: Option, share_root: Path, tmp_path: Path
) -> None:
    """The same value set in ``DAVSTORE`` (for the share, and at the top level where it may
    stand there) and not on the command line is served by ``manage.py davstore``."""
    proof = PROOFS[item.name]
    assert item.key is not None
    places = []
    if Scope.SHARE in item.scope:
        places.append({"share": {item.key: proof.setting}, **proof.with_setting})
    if Scope.TOP in item.scope:
        places.append({item.key: proof.setting, **proof.with_setting})
    for davstore in places:
        for command in _commands(item):
            manage = _through_manage(command, [], share_root, dict(davstore))
            try:
                assert proof.seen(manage) == proof.expected, (command, davstore)
            finally:
                if manage.app is not None:
                    manage.app.close()


def test_every_davstore_key_comes_from_the_definition() -> None:
    storages = {"files": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    for item in OPTIONS:
        if item.key is None:
            continue
        if Scope.SHARE in item.scope:
            with pytest.raises(Exception, match=rf"\['{item.key}'\]"):
                parse_config(
                    {"SHARES": {"s": {"STORAGE": "files", item.key: object()}}},
                    storages=storages,
                )
        if Scope.TOP in item.scope:
            with pytest.raises(Exception, match=rf"\['{item.key}'\]"):
                parse_config({item.key: object()}, storages=storages)


README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_table(heading: str) -> dict[str, str]:
    """The first options table under ``heading``: each flag of its first column, with the
    default column of its row."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    rows: dict[str, str] = {}
    started = False
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if started:
                break
            continue
        started = True
        cells = [cell.strip() for cell in line.replace("\\|", "/").strip("|").split("|")]
        for flag in re.findall(r"`(-[-\w]+|[A-Z]+)[ `]", cells[0] + " "):
            rows[flag] = cells[1]
    rows.pop("option", None)
    return rows


def _flags(command: Command) -> set[str]:
    return {
        flag
        for item in OPTIONS
        if item.flags and not item.hidden and command in item.commands and Door.CLI in item.doors
        for flag in item.option_strings
    }


def _default_cell(item: Option) -> str | None:
    """How the README's default column shows ``item``'s default (None: free text)."""
    if item.action != "store" or item.default in (None, [], ()):
        return None
    if isinstance(item.default, float):
        return f"`{item.default:g}`"
    return f"`{item.default}`"


@pytest.mark.parametrize(
    ("heading", "command", "positional"),
    [
        ("## `davstore serve` options", Command.SERVE, {"ROOT"}),
        ("## Mounting a store as a folder (FUSE)", Command.MOUNT, {"MOUNTPOINT"}),
    ],
)
def test_the_readme_options_tables_agree_with_the_definition(
    heading: str, command: Command, positional: set[str]
) -> None:
    """Every flag of ``davstore serve|mount`` is in its README table and nothing else is
    (the storage selection aside, which the serve table lists too), and a default the
    table shows as a value is the definition's."""
    table = _readme_table(heading)
    selection = {"--backend", "--option", "-o", "--storage", "--settings"}
    expected = _flags(command) | positional | (selection if command is Command.SERVE else set())
    assert set(table) == expected
    for item in OPTIONS:
        cell = _default_cell(item)
        if cell is not None and item.flag in table:
            assert table[item.flag].startswith(cell), (item.name, table[item.flag], cell)


def test_the_readme_davstore_setting_names_every_key() -> None:
    """The ``DAVSTORE`` block of the README shows every key the setting accepts."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("DAVSTORE = {\n") :]
    block = block[: block.index("\n}\n")]
    shown = set(re.findall(r'^\s*"([A-Z_]+)":', block, re.MULTILINE))
    accepted = keys(Scope.SHARE) | keys(Scope.TOP) | {"SHARES", "STORAGE", "ADAPTERS"}
    assert shown == accepted


class _Person:
    """An active user who is neither staff nor superuser and holds no permission."""

    is_active = True
    is_authenticated = True
    is_staff = False
    is_superuser = False

    def has_perm(self, perm: str) -> bool:
        return False


def _guarded(served: Served) -> frozenset[Any]:
    """The kinds of operation the site guard checks on the share's VFS (the trash, on by
    default, is a policy too: only the guard's count)."""
    from davstore.site.guard import Guard

    policies = _app(served).vfs._policies
    return frozenset(
        kind for kind, found in policies.items() if any(isinstance(p, Guard) for p in found)
    )


#: One proof per option only ``DAVSTORE`` has: its setting, what shows it, and what shows
#: without it (so the setting is seen to change something).
SETTING_PROOFS: dict[str, tuple[Any, Callable[[Served], Any], Any, Any]] = {
    "read": (["authenticated"], lambda s: can_read(_Person(), _share(s)), True, False),
    "write": (["authenticated"], lambda s: can_write(_Person(), _share(s)), True, False),
    "auth_cache_ttl": (5, lambda s: _shares_app(s).authenticate.ttl, 5.0, 60.0),
    "realm": ("files", lambda s: _app(s).wsgidav.config["davstore"]["realm"], "files", "davstore"),
    "on_delete_referenced": ("allow", lambda s: Kind.DELETE in _guarded(s), False, True),
    "on_move_referenced": ("allow", lambda s: _guard(s).on_move.value, "allow", "rewrite"),
    "on_replace_referenced": (
        "allow",
        lambda s: _guard(s).on_replace.value,
        "allow",
        "validate",
    ),
}


def _trash(served: Served) -> Any:
    """The trash on the share's VFS (davstore.vfs.trash), if any: what is served, or
    what is mounted."""
    from davstore.vfs.trash import trash_of

    trash = trash_of(served.vfs if served.mount else _app(served).vfs)
    if trash is not None:
        trash.close()  # a mount's VFS purges on a thread of its own
    return trash


def _guard(served: Served) -> Any:
    """The site guard on the share's VFS (it watches moves and replacements whatever
    the policies say: new content at a referenced name sends file_replaced)."""
    from davstore.site.guard import Guard

    return next(p for p in _app(served).vfs._policies[Kind.MOVE] if isinstance(p, Guard))


def _shares_app(served: Served) -> SharesApp:
    assert served.shares_app is not None
    return served.shares_app


def _share(served: Served) -> Any:
    return _shares_app(served).shares["files"]


def _setting_only() -> list[Option]:
    return [o for o in OPTIONS if o.key is not None and not o.flags]


def test_every_setting_only_option_has_a_proof() -> None:
    assert sorted(o.name for o in _setting_only()) == sorted(SETTING_PROOFS)


@pytest.mark.parametrize("item", _setting_only(), ids=lambda o: o.name)
def test_each_setting_only_option_is_served(item: Option, share_root: Path) -> None:
    """An option only ``DAVSTORE`` has (who may read or write, the guard's policies, the
    credentials cache, the realm) changes what ``manage.py davstore serve`` serves."""
    setting, seen, expected, without = SETTING_PROOFS[item.name]
    assert item.key is not None
    place: dict[str, Any] = (
        {"share": {item.key: setting}} if Scope.SHARE in item.scope else {item.key: setting}
    )
    guard_files = {"share": {"STORAGE": "site"}} if "referenced" in item.name else {}
    for davstore, wanted in ((dict(guard_files), without), (_merged(guard_files, place), expected)):
        served = _through_manage(Command.SERVE, [], share_root, davstore)
        try:
            assert seen(served) == wanted, (item.name, davstore)
        finally:
            _shares_app(served).close()


def _merged(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **more}
    if "share" in base and "share" in more:
        merged["share"] = {**base["share"], **more["share"]}
    return merged


def test_docs_options_page_is_generated_from_the_definition() -> None:
    page = Path(__file__).resolve().parent.parent / "docs" / "OPTIONS.md"
    assert page.read_text(encoding="utf-8") == options_page()
