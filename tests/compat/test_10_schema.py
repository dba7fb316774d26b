"""`GET /api/schema/`: an OpenAPI 3 document that openapi-spec-validator accepts and that
describes the endpoints the clients use."""

import json
import re

import requests
import yaml

from compat_util import ANONYMOUS

REQUIRED_PATHS = [
    "/api/tasks",
    "/api/tasks/{id}",
    "/api/tasks/{id}/data",
    "/api/requests/{id}",
    "/api/auth/login",
]


def normalise(path: str) -> str:
    # CVAT writes some paths with a trailing slash (/api/tasks/{id}/data/) and names parameters
    # differently ({id} vs {rq_id}); compare modulo both.
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/") or "/")


def parse(body: bytes, content_type: str):
    text = body.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return yaml.safe_load(text)


def fetch_variants(server, admin_client):
    """Yields (description, status, content-type, body) for the ways a client asks for the schema."""
    s = requests.Session()
    if not ANONYMOUS:
        cookies = {k: v.value for k, v in admin_client.api_client.cookies.items()}
        s.cookies.update(cookies)
        s.headers["X-CSRFToken"] = cookies.get("csrftoken", "")
    url = f"{server.url}/api/schema/"
    for desc, params, headers in [
        ("?scheme=json (the SDK's SchemaApi parameter)", {"scheme": "json"}, {}),
        ("?format=json", {"format": "json"}, {}),
        ("Accept: application/vnd.oai.openapi+json", {}, {"Accept": "application/vnd.oai.openapi+json"}),
        ("no parameters", {}, {}),
    ]:
        r = s.get(url, params=params, headers=headers, timeout=30)
        yield desc, r.status_code, r.headers.get("Content-Type", ""), r.content


def test_schema_is_valid_openapi(server, admin_client):
    from openapi_spec_validator import validate

    results = list(fetch_variants(server, admin_client))
    ok = [(d, ct, b) for d, st, ct, b in results if st == 200]
    assert ok, "GET /api/schema/: no variant answered 200: " + "; ".join(
        f"{d} -> {st} {b[:120]!r}" for d, st, ct, b in results
    )
    for desc, ct, body in ok:
        try:
            doc = parse(body, ct)
        except Exception as e:
            raise AssertionError(f"GET /api/schema/ {desc}: neither JSON nor YAML ({e}); starts {body[:200]!r}")
        assert isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3."), (
            f"GET /api/schema/ {desc}: expected an OpenAPI 3 document, got keys "
            f"{sorted(doc)[:10] if isinstance(doc, dict) else type(doc)}"
        )
        try:
            validate(doc)
        except Exception as e:
            raise AssertionError(f"GET /api/schema/ {desc}: openapi-spec-validator rejects it: {e}"[:3000])
        paths = {normalise(p) for p in doc.get("paths", {})}
        missing = [p for p in REQUIRED_PATHS if normalise(p) not in paths]
        assert not missing, f"GET /api/schema/ {desc}: paths missing {missing}; has {sorted(paths)[:60]}"


def test_schema_via_sdk(admin_client):
    """The generated SchemaApi (Accept: OpenAPI/YAML/JSON types, ?scheme=json)."""
    from compat_util import api_error

    try:
        _, resp = admin_client.api_client.schema_api.retrieve(scheme="json", _parse_response=False)
    except Exception as e:
        raise AssertionError(f"schema_api.retrieve(scheme='json'): {api_error(e)}") from e
    doc = parse(resp.data, resp.headers.get("Content-Type", ""))
    assert str(doc.get("openapi", "")).startswith("3."), f"expected an OpenAPI 3 document, got {str(doc)[:200]}"
