from __future__ import annotations

import httpx


async def test_schema_is_served_and_complete(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Momentum API"
    assert "BearerToken" in schema["components"]["securitySchemes"]
    operation_ids = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), f"{method} {path} has no operationId"
            assert operation.get("responses"), f"{method} {path} documents no response"
            operation_ids.append(operation["operationId"])
            creates = method == "post" and "201" in operation["responses"]
            if method == "patch" or creates:
                assert "requestBody" in operation, f"{method} {path} documents no body"
    assert len(operation_ids) == len(set(operation_ids))


async def test_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
