"""The official Python SDK (sprites-py from PyPI) against our server.

scripts/test starts a real server on a real database and host, creates a
user with `sprites-server admin create-user`, and runs this file with
SPRITES_URL and SPRITES_TOKEN set. Exec, filesystem and checkpoint calls
join as the server grows them.
"""

import os

import pytest
from sprites import SpritesClient, URLSettings
from sprites.exceptions import NotFoundError, SpriteError
from sprites.types import ListOptions

BASE_URL = os.environ["SPRITES_URL"]
TOKEN = os.environ["SPRITES_TOKEN"]


@pytest.fixture
def client():
    with SpritesClient(TOKEN, base_url=BASE_URL) as c:
        yield c


def test_create_get_list_update_delete(client):
    sprite = client.create_sprite("sdk-one", labels=["sdk"], url_settings=URLSettings(auth="public"))
    try:
        assert sprite.name == "sdk-one"
        assert sprite.status == "running"
        assert sprite.labels == ["sdk"]
        assert sprite.url_settings.auth == "public"
        assert sprite.created_at is not None

        got = client.get_sprite("sdk-one")
        assert got.id == sprite.id
        assert got.organization_name == "sdk"

        listed = client.list_sprites(ListOptions(prefix="sdk-"))
        assert [s.name for s in listed.sprites] == ["sdk-one"]
        assert listed.running == 1
        assert [s.name for s in client.list_all_sprites(prefix="sdk")] == ["sdk-one"]

        client.update_sprite("sdk-one", labels=["a", "b"])
        assert client.get_sprite("sdk-one").labels == ["a", "b"]
    finally:
        client.delete_sprite("sdk-one")
    with pytest.raises(NotFoundError):
        client.get_sprite("sdk-one")


def test_errors_surface_as_sdk_exceptions(client):
    with pytest.raises(NotFoundError):
        client.get_sprite("never-made")
    with pytest.raises(SpriteError):
        client.create_sprite("Not A Name")
    with SpritesClient("sprt_not-a-token", base_url=BASE_URL) as bad:
        with pytest.raises(SpriteError):
            bad.list_sprites()
