"""Fixtures of the demo portal's tests: the JSON API client and a way to call DemoHost inside a request."""
from __future__ import annotations

import pytest

API_TOKEN = "test-demo-api-token"


@pytest.fixture
def app(app):
    """The shared demo app, with a known API token."""
    app.config["DEMO_API_TOKEN"] = API_TOKEN
    return app


class Api:
    """The demo JSON API as a script sees it: every call carries the bearer token."""

    def __init__(self, client):
        self.client = client
        self.headers = {"Authorization": f"Bearer {API_TOKEN}"}

    def get(self, path: str):
        return self.client.get("/api" + path, headers=self.headers)

    def post(self, path: str, json: dict):
        return self.client.post("/api" + path, json=json, headers=self.headers)

    def put(self, path: str, json: dict):
        return self.client.put("/api" + path, json=json, headers=self.headers)

    def users(self, tenant: str = "acme") -> dict[str, dict]:
        response = self.get(f"/tenants/{tenant}/users")
        assert response.status_code == 200, response.get_json()
        return {u["extension"]: u for u in response.get_json()}


@pytest.fixture
def api(app) -> Api:
    return Api(app.test_client())


@pytest.fixture
def user_id(app):
    """``user_id(tenant, extension)``: the host's id (a string) of a user."""
    from demo_app import directory

    def find(tenant: str, extension: str) -> str:
        with app.app_context():
            return str(directory.user_by_extension(directory.get_tenant(tenant), extension).id)
    return find
