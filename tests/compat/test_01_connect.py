"""Connecting: /api/server/about and the SDK's version check (spec §4); the formats list (§10)."""

import logging

import packaging.version as pv

from compat_util import ADMIN_PASSWORD, ADMIN_USER, login_client, need_auth, sdk_config

ABOUT_FIELDS = ("name", "description", "version", "logo_url", "subtitle")


def test_client_version_check_is_silent(server, tmp_path, caplog):
    from cvat_sdk import Client

    with caplog.at_level(logging.DEBUG):
        # allow_unsupported_server=False: an unsupported version raises instead of warning.
        client = Client(server.url, config=sdk_config(tmp_path), check_server_version=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, f"Client(url) with the version check: expected no warnings, got {warnings}"
    with client:
        version = client.get_server_version()
        assert version == pv.Version("2.80.0"), f"server version: expected 2.80.0, got {version}"
        client.check_server_version(fail_if_unsupported=True)


def test_about_has_all_fields(server, tmp_path):
    from cvat_sdk import Client

    with Client(server.url, config=sdk_config(tmp_path), check_server_version=False) as client:
        # The generated model raises TypeError for a missing required field.
        about, resp = client.api_client.server_api.retrieve_about()
        assert resp.status == 200, f"GET /api/server/about: expected 200, got {resp.status}"
        for f in ABOUT_FIELDS:
            assert isinstance(getattr(about, f, None), str), (
                f"About.{f}: expected a string, got {getattr(about, f, None)!r}"
            )
        assert about.version == "2.80.0", f"About.version: expected '2.80.0', got {about.version!r}"


def test_make_client_with_host_and_port(server):
    from cvat_sdk import make_client

    with make_client(server.host, port=server.port) as client:
        assert client.api_map.host == server.url
        assert client.get_server_version() == pv.Version("2.80.0")



def test_annotation_formats_list(server, tmp_path):
    """`GET /api/server/annotation/formats` (spec §10): every entry has all five fields; the
    names the clients use by default are present."""
    from cvat_sdk import Client

    need_auth()
    with login_client(server, (ADMIN_USER, ADMIN_PASSWORD), tmp_path) as client:
        formats, _ = client.api_client.server_api.retrieve_annotation_formats()  # TypeError if a field is missing
        importers = [f.name for f in formats.importers]
        exporters = [f.name for f in formats.exporters]
        assert "CVAT 1.1" in importers, f"importers: expected 'CVAT 1.1' among {importers}"
        assert "CVAT for images 1.1" in exporters, f"exporters: expected 'CVAT for images 1.1' among {exporters}"
