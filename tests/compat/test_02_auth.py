"""Authentication: password login (session cookies + CSRF), personal access tokens, logout, the
current user, and the error statuses the clients rely on (spec §5, §2 rule 5)."""

import pytest
import requests

from compat_util import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ALICE_USER,
    api_error,
    as_json,
    create_access_token,
    expect_api_error,
    login_client,
    need_auth,
    sdk_config,
)


@pytest.fixture(autouse=True)
def _auth_only():
    need_auth()


def current_username(client) -> str:
    from cvat_sdk.api_client import exceptions

    try:
        user = client.users.retrieve_current_user()
    except exceptions.ApiException as e:
        raise AssertionError(f"GET /api/users/self: expected 200 MetaUser, got {api_error(e)}") from e
    return user.username


def test_password_login_sets_session_and_csrf_cookies(admin_client):
    cookies = admin_client.api_client.cookies
    assert "sessionid" in cookies and "csrftoken" in cookies, (
        f"after login: expected cookies sessionid and csrftoken, got {sorted(cookies.keys())}"
    )
    assert current_username(admin_client) == ADMIN_USER


def test_about_reachable_when_authenticated(admin_client):
    # The CLI's order: login first, then /api/server/about with the session (spec §5.4).
    about, _ = admin_client.api_client.server_api.retrieve_about()
    assert about.version == "2.80.0", f"About.version: expected '2.80.0', got {about.version!r}"


def test_second_user_login(alice_client):
    assert current_username(alice_client) == ALICE_USER


def test_make_client_with_credentials_then_logout(server):
    from cvat_sdk import make_client

    client = make_client(server.host, port=server.port, credentials=(ADMIN_USER, ADMIN_PASSWORD))
    with client:
        assert current_username(client) == ADMIN_USER
        try:
            client.logout()  # POST /api/auth/logout, empty JSON body
        except Exception as e:
            raise AssertionError(f"POST /api/auth/logout: expected 2xx, got {api_error(e)}") from e
        assert not client.has_credentials()
        from cvat_sdk.api_client import exceptions

        with pytest.raises(exceptions.UnauthorizedException):
            client.tasks.list()


def test_logout_invalidates_the_session(server, tmp_path):
    """A session cookie must stop working once its session logged out."""
    client = login_client(server, (ADMIN_USER, ADMIN_PASSWORD), tmp_path)
    with client:
        cookies = {k: v.value for k, v in client.api_client.cookies.items()}
        client.logout()
    r = requests.get(
        f"{server.url}/api/users/self", cookies=cookies,
        headers={"X-CSRFToken": cookies["csrftoken"]}, timeout=30,
    )
    assert r.status_code == 401, (
        f"GET /api/users/self with the cookies of a logged-out session: expected 401, got "
        f"{r.status_code} {r.text[:300]}"
    )


def test_wrong_password_is_400(server, tmp_path):
    from cvat_sdk import Client

    with Client(server.url, config=sdk_config(tmp_path)) as client:
        e = expect_api_error(
            lambda: client.login((ADMIN_USER, "not-the-password")), 400,
            "POST /api/auth/login with a wrong password",
        )
        assert "sessionid" not in client.api_client.cookies, "a failed login must not set sessionid"


def test_unknown_user_is_400(server, tmp_path):
    from cvat_sdk import Client

    with Client(server.url, config=sdk_config(tmp_path)) as client:
        expect_api_error(
            lambda: client.login(("nobody-here", "whatever")), 400,
            "POST /api/auth/login for an unknown user",
        )


def test_no_credentials_is_401(server, tmp_path):
    r = requests.get(f"{server.url}/api/tasks", timeout=30)
    assert r.status_code == 401, (
        f"GET /api/tasks without credentials: expected 401, got {r.status_code} {r.text[:300]}"
    )
    from cvat_sdk import Client
    from cvat_sdk.api_client import exceptions

    with Client(server.url, config=sdk_config(tmp_path)) as client:
        with pytest.raises(exceptions.UnauthorizedException):
            client.tasks.list()


def test_bogus_bearer_token_is_401(server):
    r = requests.get(
        f"{server.url}/api/tasks", headers={"Authorization": "Bearer not-a-real-token"}, timeout=30
    )
    assert r.status_code == 401, (
        f"GET /api/tasks with an unknown Bearer token: expected 401, got {r.status_code} {r.text[:300]}"
    )


def test_access_token_login(server, admin_client, tmp_path):
    from cvat_sdk import make_client
    from cvat_sdk.core.client import AccessTokenCredentials

    token = create_access_token(admin_client, "compat-login")

    client = login_client(server, AccessTokenCredentials(token["value"]), tmp_path)
    with client:
        assert current_username(client) == ADMIN_USER
        client.tasks.list()  # any authenticated endpoint works with the token
        # What `cvat-cli profile create <PAT>` calls (spec §5.2).
        try:
            me, _ = client.api_client.auth_api.retrieve_access_tokens_self()
        except Exception as e:
            raise AssertionError(
                f"GET /api/auth/access_tokens/self with Bearer: expected 200, got {api_error(e)}"
            ) from e
        assert me.name == "compat-login", f"access_tokens/self: expected name 'compat-login', got {as_json(me)}"

    with make_client(server.host, port=server.port, access_token=token["value"]) as client:
        assert current_username(client) == ADMIN_USER


def test_access_tokens_list_and_revoke(server, admin_client):
    from cvat_sdk.api_client import exceptions

    token = create_access_token(admin_client, "compat-revoke")
    bearer = {"Authorization": f"Bearer {token['value']}"}
    r = requests.get(f"{server.url}/api/users/self", headers=bearer, timeout=30)
    assert r.status_code == 200, f"GET /api/users/self with a fresh token: expected 200, got {r.status_code} {r.text[:300]}"

    try:
        listed, _ = admin_client.api_client.auth_api.list_access_tokens()
    except exceptions.ApiException as e:
        raise AssertionError(f"GET /api/auth/access_tokens: expected 200, got {api_error(e)}") from e
    ids = [t.id for t in listed.results]
    assert token["id"] in ids, f"GET /api/auth/access_tokens: expected id {token['id']} in {ids}"
    assert all(not getattr(t, "value", None) for t in listed.results), (
        "GET /api/auth/access_tokens must not reveal token values (CVAT shows them only at creation)"
    )

    try:
        admin_client.api_client.auth_api.destroy_access_tokens(token["id"])
    except exceptions.ApiException as e:
        raise AssertionError(
            f"DELETE /api/auth/access_tokens/{token['id']}: expected 204, got {api_error(e)}"
        ) from e

    r = requests.get(f"{server.url}/api/users/self", headers=bearer, timeout=30)
    assert r.status_code == 401, (
        f"GET /api/users/self with a revoked token: expected 401, got {r.status_code} {r.text[:300]}"
    )
    listed, _ = admin_client.api_client.auth_api.list_access_tokens()
    assert token["id"] not in [t.id for t in listed.results], "a revoked token is still listed"


def test_revoked_token_via_sdk_is_unauthorized(server, admin_client, tmp_path):
    from cvat_sdk.api_client import exceptions
    from cvat_sdk.core.client import AccessTokenCredentials

    token = create_access_token(admin_client, "compat-revoke-sdk")
    admin_client.api_client.auth_api.destroy_access_tokens(token["id"])
    with login_client(server, AccessTokenCredentials(token["value"]), tmp_path) as client:
        with pytest.raises(exceptions.UnauthorizedException):
            client.users.retrieve_current_user()
