"""Password guessing meets 429 rate_limited with Retry-After, through a real server.

The addresses are set with X-Forwarded-For, which uvicorn honours from 127.0.0.1 (the
trusted proxy of FORWARDED_ALLOW_IPS): the same path a reverse proxy's clients take.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from tests.conftest import make_settings
from tests.support.clients import PASSWORD, Api
from tests.support.server import LiveServer


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        tmp_path, sign_in_failures_per_account=3, sign_in_failures_per_address=5
    )
    live = await LiveServer(settings).start()
    client = Api(live.url)
    try:
        yield client
    finally:
        await client.aclose()
        await live.stop()


async def sign_in(api: Api, email: str, password: str, address: str) -> httpx.Response:
    return await api.http.post(
        "/api/auth/token",
        data={"username": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


def assert_rate_limited(r: httpx.Response, window_s: int = 300) -> None:
    assert r.status_code == 429, r.text
    assert r.json() == {
        "detail": "too many failed sign-ins: try again later",
        "error_type": "rate_limited",
    }
    assert 1 <= int(r.headers["Retry-After"]) <= window_s


async def test_an_account_guessed_at_is_refused_even_with_the_right_password(api: Api) -> None:
    owner, bystander = await api.user(), await api.user()
    for n in range(3):
        r = await sign_in(api, owner.email, f"guess-{n}", f"203.0.113.{n}")
        assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
    # From a fourth address too: the count is the account's.
    assert_rate_limited(await sign_in(api, owner.email.upper(), "guess-3", "203.0.113.9"))
    assert_rate_limited(await sign_in(api, owner.email, PASSWORD, "198.51.100.1"))
    # Nothing stored is touched: the token the owner holds still works, others sign in.
    me = await api.http.get("/api/auth/me", headers={"Authorization": f"Bearer {owner.token}"})
    assert me.status_code == 200 and me.json()["email"] == owner.email
    assert (await sign_in(api, bystander.email, PASSWORD, "203.0.113.0")).status_code == 200


async def test_an_address_trying_many_accounts_is_refused_for_all_of_them(api: Api) -> None:
    users = [await api.user() for _ in range(3)]
    for n in range(5):
        r = await sign_in(api, users[n % 3].email, "not-it-1", "192.0.2.7")
        assert r.status_code == 401
    assert_rate_limited(await sign_in(api, users[0].email, PASSWORD, "192.0.2.7"))
    assert_rate_limited(await sign_in(api, "nobody@example.com", "whatever1", "192.0.2.7"))
    # Another address signs in to the same accounts (each has at most two failures).
    for user in users:
        assert (await sign_in(api, user.email, PASSWORD, "192.0.2.8")).status_code == 200


async def test_the_owners_own_typos_are_forgiven_by_a_success(api: Api) -> None:
    owner = await api.user()
    for round_ in range(3):
        address = f"198.51.100.{round_}"  # the address limit is not what this test is about
        for _ in range(2):
            assert (await sign_in(api, owner.email, "typo-typo", address)).status_code == 401
        assert (await sign_in(api, owner.email, PASSWORD, address)).status_code == 200


async def test_a_loopback_client_is_counted_by_account_only(api: Api) -> None:
    users = [await api.user() for _ in range(7)]
    for user in users[:6]:  # six failures from 127.0.0.1, over the address limit of five
        r = await api.http.post(
            "/api/auth/token", data={"username": user.email, "password": "not-it-1"}
        )
        assert r.status_code == 401
    ok = await api.http.post(
        "/api/auth/token", data={"username": users[6].email, "password": PASSWORD}
    )
    assert ok.status_code == 200
