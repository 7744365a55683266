"""Extension allocation (start number, gaps, concurrency) and photo sync by ETag."""
from __future__ import annotations

import hashlib
import threading


def test_start_number_skips_numbers_in_use(env):
    env.create_pbx_user("taken1", extension="2000")
    env.create_pbx_user("taken2", extension="2002")
    env.settings(start_extension="2000")
    env.sync()
    assert sorted(u["extension"] for u in env.synced().values()) == ["2001", "2003", "2004", "2005"]


def test_without_start_number_the_first_free_numbers(env):
    env.sync()  # acme's seeded users have 100-103
    assert sorted(u["extension"] for u in env.synced().values()) == ["104", "105", "106", "107"]


def test_existing_extension_never_changes(env):
    env.sync()
    before = {name: u["extension"] for name, u in env.synced().items()}
    env.settings(start_extension="5000")
    env.emulator.patch_user(env.tid, env.oid("bob"), surname="Baker")
    env.sync()
    assert {name: u["extension"] for name, u in env.synced().items()} == before


def test_allocation_is_safe_against_a_host_admin_taking_the_number(app, redis_conn):
    from demo_app.host import DemoHost
    from flask_pbx365.host import UserFields
    from flask_pbx365.state import get_state
    from flask_pbx365.users.extensions import ExtensionAllocator

    host = DemoHost()
    with app.app_context():
        allocator = ExtensionAllocator.for_users(host, "acme", "3000", host.list_users("acme"))
        # a host admin creates 3000 and 3001 after the sync read the PBX's users
        host.create_user("acme", "other1", "3000", UserFields(first_name="O"))
        host.create_user("acme", "other2", "3001", UserFields(first_name="P"))
        get_state().db.session.commit()
        created = allocator.create("new@x.example", UserFields(first_name="N", email="new@x.example"))
        get_state().db.session.commit()
        assert created.extension == "3002"


def test_concurrent_allocations_never_share_a_number(app, redis_conn):
    from demo_app.host import DemoHost
    from flask_pbx365.host import UserFields
    from flask_pbx365.state import get_state
    from flask_pbx365.users.extensions import ExtensionAllocator

    results: list[str] = []
    errors: list[BaseException] = []

    def allocate(worker: int) -> None:
        try:
            with app.app_context():
                host = DemoHost()
                allocator = ExtensionAllocator.for_users(host, "acme", "4000", host.list_users("acme"))
                for n in range(8):
                    user = allocator.create(f"w{worker}n{n}@x.example", UserFields(first_name=f"W{worker}",
                                                                                  email=f"w{worker}n{n}@x.example"))
                    get_state().db.session.commit()
                    results.append(user.extension)
                get_state().db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=allocate, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 24 and len(set(results)) == 24


PNG_1 = b"\x89PNG\r\n\x1a\n" + b"first photo" * 20
PNG_2 = b"\x89PNG\r\n\x1a\n" + b"second photo" * 20


def test_photos_fetched_only_when_changed_and_removed_when_deleted(env):
    env.emulator.put_photo(env.tid, env.oid("alice"), PNG_1, "image/png")
    env.settings(photos=True)
    env.sync()
    assert env.synced()["alice"]["photo_sha256"] == hashlib.sha256(PNG_1).hexdigest()
    assert env.synced()["bob"]["photo_sha256"] is None

    env.emulator.clear_requests()
    env.sync()
    assert not [e for e in env.emulator.requests_log() if e["path"].endswith("/photo/$value")]

    env.emulator.put_photo(env.tid, env.oid("alice"), PNG_2, "image/png")
    env.emulator.clear_requests()
    env.sync()
    fetched = [e for e in env.emulator.requests_log() if e["path"].endswith("/photo/$value")]
    assert len(fetched) == 1 and env.oid("alice") in fetched[0]["path"]
    assert env.synced()["alice"]["photo_sha256"] == hashlib.sha256(PNG_2).hexdigest()

    env.emulator.delete_photo(env.tid, env.oid("alice"))
    env.sync()
    assert env.synced()["alice"]["photo_sha256"] is None
