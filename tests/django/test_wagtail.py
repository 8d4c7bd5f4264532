"""Issue 21's table on a real Wagtail site (tests.wagtailsite): a staff user's MOVE, DELETE
and admin rename/delete of a referenced image, document or the renditions folder ends with
the page and Wagtail's admin answering 200 with an image that loads and a document link that
works, or with a refusal naming the rows; davstore's Wagtail receiver deletes an image's
renditions when new content replaces it. The same changes through a FUSE mount of the share
end the same way (the mount's own process runs the guard and the receiver). Each scenario
runs in a process of its own with the site's settings (tests/wagtailsite/scenarios.py holds
the steps and the checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.wagtail import migrate, run_scenario, s3_options
from tests.s3.moto import MotoServer, running_moto

ON_DISK = [
    "move_image",
    "move_renditions_folder",
    "delete_image",
    "delete_document",
    "delete_renditions_folder",
    "admin_rename_image",
    "admin_delete_image",
    "replaced_signal_deletes_renditions",
]
#: The same through a FUSE mount of the share (``manage.py davstore mount``).
THROUGH_THE_MOUNT = [
    "fuse_move_image",
    "fuse_delete_image",
    "fuse_delete_renditions_folder",
    "fuse_text_over_image",
    "fuse_jpeg_over_image",
]
ON_S3 = [
    "move_image",
    "move_renditions_folder",
    "delete_image",
    "delete_document",
    "admin_rename_image",
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate(tmp_path_factory.mktemp("wagtail-template"))


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.mark.parametrize("name", ON_DISK)
def test_wagtail_site_on_local_disk(name: str, database: Path, tmp_path: Path) -> None:
    run_scenario(name, database, tmp_path / "site")


@pytest.mark.parametrize("name", THROUGH_THE_MOUNT)
def test_wagtail_site_through_a_mount(name: str, database: Path, tmp_path: Path) -> None:
    run_scenario(name, database, tmp_path / "site")


@pytest.mark.parametrize("name", ON_S3)
def test_wagtail_site_on_s3(name: str, database: Path, tmp_path: Path, moto: MotoServer) -> None:
    run_scenario(name, database, tmp_path / "site", s3_options(moto))


#: PUT over a referenced image: the replace policy (ON_REPLACE_REFERENCED, guardplus's
#: branch) refuses text with 415 and sends file_replaced for a new picture.
REPLACE = ["put_text_over_image", "put_jpeg_over_image"]


@pytest.mark.parametrize("name", REPLACE)
def test_wagtail_site_put_over_an_image(name: str, database: Path, tmp_path: Path) -> None:
    run_scenario(name, database, tmp_path / "site")


#: The Files section in Wagtail's admin (davstore.wagtail_hooks): the menu item for the
#: users who may read a share, and the same pages and rules as Django's admin.
FILES_IN_WAGTAIL = ["wagtail_files_menu", "wagtail_files_pages"]


@pytest.mark.parametrize("name", FILES_IN_WAGTAIL)
def test_files_in_wagtails_admin(name: str, database: Path, tmp_path: Path) -> None:
    run_scenario(name, database, tmp_path / "site")
