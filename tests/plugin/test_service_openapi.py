"""Property-based tests of the running engine against its own OpenAPI spec (schemathesis), and the published
spec."""

from __future__ import annotations

import json

import schemathesis
from fixtures.paths import REPO
from hypothesis import HealthCheck, settings

from captionbridge.plugin.service.spec import openapi_spec

SPEC_FILE = REPO / "plugin" / "service" / "openapi.json"


# The engine is checked against the published spec file (what the editors' scripts and panels are written
# against), not against the function that builds the served one: a change to the API that is not published
# fails here. schemathesis's lazy fixture loader does not run under pytest 9, so the schema is loaded at
# import.
schema = schemathesis.openapi.from_dict(json.loads(SPEC_FILE.read_text(encoding="utf-8")))


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_spec(case, shared_engine):
    client = shared_engine.client
    # positive_data_acceptance is left out on purpose: whether a request is acceptable depends on the file
    # system (the timeline must exist and be a timeline), which no schema can say; every other check runs,
    # including negative_data_rejection, response schema, status code, content type and Allow header
    # conformance.
    case.call_and_validate(
        base_url=client.base_url,
        headers={"Authorization": f"Bearer {client.token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )


def test_served_spec_is_the_published_one(shared_engine):
    assert shared_engine.client.request("GET", "/openapi.json") == json.loads(
        SPEC_FILE.read_text(encoding="utf-8")
    )


def test_published_spec_is_current():
    """plugin/service/openapi.json is what the engine serves (regenerate: python -m
    captionbridge.plugin.service.spec)."""
    assert json.loads(SPEC_FILE.read_text(encoding="utf-8")) == json.loads(json.dumps(openapi_spec()))


def test_spec_documents_the_contract():
    spec = openapi_spec()
    paths = spec["paths"]
    assert set(paths) >= {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/result",
        "/v1/jobs/{job_id}/files/{name}",
        "/v1/health",
        "/v1/models",
    }
    assert set(paths["/v1/jobs/{job_id}"]) == {"get", "delete"}
    body = paths["/v1/jobs"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    options = body["application/json"]["schema"]["properties"]["options"]
    assert options["additionalProperties"] is False
    assert {"language", "translate_to", "preset", "tracks", "formats", "model", "device"} <= set(
        options["properties"]
    )
    assert spec["security"] == [{"bearerToken": []}]
    status = spec["components"]["schemas"]["JobStatus"]
    assert set(status["required"]) == {
        "id",
        "state",
        "stage",
        "progress",
        "eta_seconds",
        "error",
        "created_at",
        "updated_at",
        "files",
    }
    for path_item in paths.values():
        for op in path_item.values():
            assert {"401", "403"} <= set(op["responses"])
