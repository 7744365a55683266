"""Graph client throughput against the emulator: full user reads, delta rounds, token acquisition."""
from __future__ import annotations

import time
import uuid

import pytest

from flask_pbx365.clouds import resolve_cloud
from flask_pbx365.graph.client import GraphClient
from flask_pbx365.graph.credentials import AppCredentials
from flask_pbx365.testing import make_certificate

SELECT = "id,givenName,surname,displayName,mail,userPrincipalName,department,jobTitle,mobilePhone,businessPhones," \
         "accountEnabled,userType"


def _client(emulator, size: int) -> tuple[GraphClient, str]:
    tid = str(uuid.uuid4())
    emulator.generate(tenantId=tid, users=size, seed=size)
    cert = make_certificate()
    app_id = emulator.add_application(tid, displayName="bench", certificates=[cert.certificate_pem],
                                      permissions=["User.Read.All"], adminConsent=True)
    cloud = resolve_cloud("custom", login_url=emulator.base_url, graph_url=emulator.base_url,
                          ca_bundle=str(emulator.ca_path))
    creds = AppCredentials(tenant_key=f"bench-{size}", client_id=app_id, directory_id=tid, cloud=cloud,
                           private_key_pem=cert.private_key_pem.encode(), certificate_pem=cert.certificate_pem.encode())
    return GraphClient(creds), tid


@pytest.mark.parametrize("size", [1000, 5000, 10000])
def test_full_user_read(m365_emulator, record, size):
    client, tid = _client(m365_emulator, size)
    t0 = time.perf_counter()
    client.token_roles()
    token_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pages = users = 0
    for page in client.iter_pages("/users", params={"$select": SELECT, "$top": "999"}):
        pages += 1
        users += len(page["value"])
    read_s = time.perf_counter() - t0
    record("graph_full_user_read", x=size, users=users, pages=pages, token_s=token_s, read_s=read_s,
           users_per_s=round(users / read_s))


@pytest.mark.parametrize("size", [1000, 10000])
def test_delta_rounds(m365_emulator, record, size):
    client, tid = _client(m365_emulator, size)
    t0 = time.perf_counter()
    first = client.delta("/users/delta", params={"$select": SELECT})
    count = sum(len(page) for page in first)
    initial_s = time.perf_counter() - t0
    users = m365_emulator.users(tid)[:100]
    for u in users:
        m365_emulator.patch_user(tid, u["id"], jobTitle="Changed")
    t0 = time.perf_counter()
    changes = sum(len(page) for page in client.delta(first.delta_link))
    incremental_s = time.perf_counter() - t0
    record("graph_delta", x=size, initial_items=count, initial_s=initial_s, changed=changes,
           incremental_s=incremental_s)
