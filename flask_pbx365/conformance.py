"""The host-adapter conformance kit: :class:`~flask_pbx365.host.PBXHost`'s contract as a pytest suite.

A PBX vendor runs it against their own adapter before real users depend on it::

    pytest --pbx365-host mypbx.adapter:make_harness

``mypbx.adapter.make_harness`` (any name; the current directory is importable) is a function that returns a
:class:`HostHarness`, or a generator function that yields one and cleans up after the ``yield``. The harness is
the vendor's Flask app with ``PBX365`` mounted on it (not yet having served a request: the kit adds two probe
routes under ``/_pbx365_kit``), a tenant the kit may write to, and a few optional hooks the protocol cannot
express (how a user makes their own phonebook entry, where sent mail can be seen).

What the kit does to the tenant: it creates users named ``pbx365-kit-…`` on free extensions from
``first_extension`` upward, phonebook entries from the sources ``microsoft365-kit`` and
``microsoft365-kit:shared@kit.example``, an extension group ``PBX365 Kit``, and sends one mail to
``kit@example.invalid``. It deletes the users and phonebook entries it made when each test ends. Everything else
in the tenant is only read.

Each check runs the way the extension calls the host: inside an app context, writes committed (or rolled back)
through the host's ``db.session`` afterwards, and read back in a fresh app context, so a write that only lived in
the session's identity map does not pass. Failures name the method and the guarantee it broke.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Blueprint, Flask, jsonify

from .exceptions import ExtensionInUseError, PBX365Error
from .host import (CALL_STATES, PRESENCE_SOURCES, PRESENCE_STATUSES, HostTenant, HostUser, MailAttachment, MailMessage, PBXHost, PhonebookEntry,
                   PublicURLs, UserChange, UserFields, apply_phonebook, apply_users, get_presences,
                   get_users, personal_phonebook_keys, phonebook_keys)
from .state import get_state

SOURCE = "microsoft365-kit"
SHARED_SOURCE = "microsoft365-kit:shared@kit.example"
GROUP = "PBX365 Kit"
NO_SUCH_TENANT = "pbx365-kit-no-such-tenant"
PROBE_PREFIX = "/_pbx365_kit"


@dataclass
class HostHarness:
    """What the kit needs besides the adapter itself (which it takes from ``app.extensions["pbx365"]``).

    ``tenant``: a tenant key of ``list_tenants()`` the kit may add users to. ``other_tenant``: a second tenant,
    to prove that nothing leaks between tenants (checks that need it are skipped without it).
    ``admin_user_id``: a user of ``tenant`` who administers it, for ``login_user(..., "admin")``; by default the
    first user ``list_users`` reports with ``is_admin``. ``add_user_contact(tenant, user_id, name)`` makes a
    phonebook entry as the user would by hand, ``user_contact_names(tenant, user_id)`` lists the names of those
    (both or neither; without them the "user-made entries are untouched" check is skipped).
    ``sent_mail()`` returns what ``send_mail`` delivered so far, as ``MailMessage``\\ s or dicts with ``to`` and
    ``subject``. ``transactional``: the host's writes take part in the host's ``db.session`` transaction, so the
    extension's rollback undoes them (a host that writes elsewhere says ``False``).
    """

    app: Flask
    tenant: str
    other_tenant: str | None = None
    admin_user_id: str | None = None
    add_user_contact: Callable[[str, str, str], None] | None = None
    user_contact_names: Callable[[str, str], list[str]] | None = None
    sent_mail: Callable[[], list[Any]] | None = None
    transactional: bool = True
    first_extension: int = 8900


# --- loading the vendor's harness ---------------------------------------------------------------------------------


def load_factory(spec: str) -> Callable[[], Any]:
    """``module:attribute`` (as given to ``--pbx365-host``) to the callable it names."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"--pbx365-host wants MODULE:FACTORY, e.g. mypbx.adapter:make_harness, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise pytest.UsageError(f"--pbx365-host: cannot import {module_name}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError as exc:
        raise pytest.UsageError(f"--pbx365-host: {module_name} has no {attribute}") from exc


@pytest.fixture(scope="module")
def harness(request: pytest.FixtureRequest) -> Iterator[HostHarness]:
    """The vendor's harness, with the kit's probe routes added to its app."""
    spec = request.config.getoption("pbx365_host")
    if not spec:
        pytest.skip("run the conformance kit with --pbx365-host MODULE:FACTORY")
    factory = load_factory(spec)
    made = factory()
    generator = made if inspect.isgenerator(made) else None
    built = next(generator) if generator else made
    if not isinstance(built, HostHarness):
        raise pytest.UsageError(f"{spec} must return (or yield) a flask_pbx365.conformance.HostHarness, "
                                f"not {type(built).__name__}")
    if "pbx365" not in built.app.extensions:
        raise pytest.UsageError(f"{spec}: the app has no PBX365 extension mounted (PBX365(app, db=..., host=...))")
    _add_probe_routes(built)
    yield built
    if generator:
        next(generator, None)


def _add_probe_routes(h: HostHarness) -> None:
    probe = Blueprint("pbx365_kit", __name__)

    @probe.get("/login/<user_id>/<target>")
    def login(user_id: str, target: str):
        response = get_state().host.login_user(h.tenant, user_id, target)  # type: ignore[arg-type]
        get_state().db.session.commit()
        return response

    @probe.get("/scope")
    def scope():
        host = get_state().host
        return jsonify(current=host.current_tenant(), admin=host.is_tenant_admin(h.tenant),
                       other=host.is_tenant_admin(h.other_tenant) if h.other_tenant else False,
                       unknown=host.is_tenant_admin(NO_SUCH_TENANT))

    try:
        h.app.register_blueprint(probe, url_prefix=PROBE_PREFIX)
    except AssertionError as exc:  # Flask refuses new routes once the app has served a request
        raise pytest.UsageError("The harness's app has already served a request; return a fresh app so the kit "
                                "can add its probe routes.") from exc


class Kit:
    """One test's view of the host: steps in app contexts, and the users and entries to clean up after it."""

    def __init__(self, h: HostHarness):
        self.h = h
        self.app = h.app
        self.host: PBXHost = h.app.extensions["pbx365"].host
        self.db = h.app.extensions["pbx365"].db
        self.tenant = h.tenant
        self.created: list[tuple[str, str]] = []
        self.personal: list[tuple[str, str, str, str]] = []
        self.company: list[tuple[str, str, str]] = []

    @contextmanager
    def step(self) -> Iterator[PBXHost]:
        """An app context whose host writes are committed at the end (rolled back on an error)."""
        with self.app.app_context():
            try:
                yield self.host
            except BaseException:
                self.db.session.rollback()
                raise
            self.db.session.commit()

    def read(self, fn: Callable[[PBXHost], Any]) -> Any:
        with self.step() as host:
            return fn(host)

    def free_extension(self) -> str:
        number = max([self.h.first_extension, *(int(e) + 1 for _, e in self.created if e.isdigit())])
        with self.step() as host:
            while not host.is_extension_free(self.tenant, str(number)):
                number += 1
        return str(number)

    def new_user(self, label: str = "user", **fields: Any) -> HostUser:
        """A user of the tenant the kit creates (and deletes after the test)."""
        extension = self.free_extension()
        values = {"first_name": "Kit", "last_name": label.title(), "display_name": f"Kit {label.title()}",
                  "email": f"pbx365-kit-{label}-{extension}@kit.example", **fields}
        with self.step() as host:
            user = host.create_user(self.tenant, f"pbx365-kit-{label}-{extension}@kit.example", extension,
                                    UserFields(**values))
        self.created.append((user.id, user.extension))
        return user

    def get(self, user_id: str, tenant: str | None = None) -> HostUser | None:
        return self.read(lambda host: host.get_user(tenant or self.tenant, user_id))

    def cleanup(self) -> None:
        for tenant, user_id, source, key in self.personal:
            self._quietly(lambda host: host.delete_personal_contact(tenant, user_id, source, key))
        for tenant, source, key in self.company:
            self._quietly(lambda host: host.delete_company_contact(tenant, source, key))
        for user_id, _ in self.created:
            self._quietly(lambda host: host.get_user(self.tenant, user_id) and host.delete_user(self.tenant, user_id))

    def _quietly(self, fn: Callable[[PBXHost], Any]) -> None:
        try:
            self.read(fn)
        except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
            pass

    # --- requests -----------------------------------------------------------------------------------------
    def scope(self, client) -> dict:
        answer = client.get(f"{PROBE_PREFIX}/scope")
        assert answer.status_code == 200, f"the kit's probe failed: {answer.status_code}"
        return answer.get_json()

    def sign_in(self, client, user_id: str, target: str):
        return client.get(f"{PROBE_PREFIX}/login/{user_id}/{target}")

    def admin_id(self) -> str:
        if self.h.admin_user_id:
            return self.h.admin_user_id
        admins = [u for u in self.read(lambda host: host.list_users(self.tenant)) if u.is_admin and u.enabled]
        if not admins:
            pytest.skip("No admin_user_id in the harness and no enabled user of the tenant with is_admin=True.")
        return admins[0].id

    def admin_index(self) -> str:
        return self.app.config["PBX365_ADMIN_URL_PREFIX"].rstrip("/") + "/"


@pytest.fixture
def kit(harness: HostHarness) -> Iterator[Kit]:
    k = Kit(harness)
    try:
        yield k
    finally:
        k.cleanup()


def _entry(key: str, name: str, source: str = SOURCE, **extra: Any) -> PhonebookEntry:
    phones = extra.pop("phones", {"business": ["+14255550100"], "mobile": ["+12065550100"], "home": []})
    return PhonebookEntry(key=key, source=source, name=name, company=extra.pop("company", "Kit Ltd"),
                          phones=phones, emails=extra.pop("emails", [f"{key}@kit.example"]))


def _same_entry(found: PhonebookEntry, expected: PhonebookEntry) -> None:
    assert (found.key, found.source, found.name, found.company) == (
        expected.key, expected.source, expected.name, expected.company), \
        f"the stored entry {found!r} is not what was upserted: {expected!r}"
    for kind in ("business", "mobile", "home"):
        assert list(found.phones.get(kind, [])) == list(expected.phones.get(kind, [])), \
            f"{kind} phones of entry {found.key}: stored {found.phones.get(kind)!r}, upserted {expected.phones[kind]!r}"
    assert list(found.emails) == list(expected.emails), f"emails of entry {found.key} were not kept"


# === tenancy and the admin check ==================================================================================


def test_adapter_implements_every_method_of_the_protocol(kit):
    missing = [name for name, member in vars(PBXHost).items()
               if not name.startswith("_") and callable(member) and not callable(getattr(kit.host, name, None))]
    assert not missing, f"the host adapter lacks {', '.join(missing)}"
    assert isinstance(kit.host, PBXHost)


def test_tenants_are_listed_with_unique_keys(kit):
    tenants = kit.read(lambda host: host.list_tenants())
    assert tenants and all(isinstance(t, HostTenant) for t in tenants), "list_tenants must return HostTenant objects"
    keys = [t.key for t in tenants]
    assert len(keys) == len(set(keys)), f"list_tenants repeats tenant keys: {keys}"
    assert all(isinstance(k, str) and k for k in keys), "tenant keys are non-empty strings"
    assert kit.tenant in keys, f"the harness's tenant {kit.tenant!r} is not in list_tenants()"
    if kit.h.other_tenant:
        assert kit.h.other_tenant in keys


def test_an_anonymous_request_has_no_tenant_and_is_sent_to_the_login_page(kit):
    client = kit.app.test_client()
    scope = kit.scope(client)
    assert scope["current"] is None, "current_tenant() must be None when nobody is signed in"
    assert scope["admin"] is False and scope["unknown"] is False, "is_tenant_admin() must be False for nobody"
    answer = client.get(kit.admin_index())
    assert answer.status_code in (301, 302, 303, 307), \
        f"an anonymous admin page must redirect to the host's login, got {answer.status_code}"
    with kit.app.test_request_context():
        expected = kit.host.login_url(kit.admin_index())
    assert answer.headers["Location"].endswith(urlsplit(expected).path + (
        f"?{urlsplit(expected).query}" if urlsplit(expected).query else "")), \
        "the admin pages send an anonymous visitor to login_url()"


def test_login_url_keeps_the_way_back(kit):
    back = "/admin/integrations/microsoft365/users?tab=1"
    with kit.app.test_request_context():
        url = kit.host.login_url(back)
    assert isinstance(url, str) and url, "login_url returns a URL"
    assert back in url or back in [value for _, value in parse_qsl(urlsplit(url).query)], \
        f"login_url({back!r}) = {url!r} loses the path to return to"


def test_a_tenant_admin_administers_their_tenant_only(kit):
    client = kit.app.test_client()
    answer = kit.sign_in(client, kit.admin_id(), "admin")
    assert answer.status_code < 400, f"login_user(..., 'admin') answered {answer.status_code}"
    scope = kit.scope(client)
    assert scope["current"] == kit.tenant, "after an admin sign-in, current_tenant() is the admin's tenant"
    assert scope["admin"] is True, "after an admin sign-in, is_tenant_admin(tenant) is True"
    assert scope["unknown"] is False, "is_tenant_admin() of a tenant that does not exist must be False"
    if kit.h.other_tenant:
        assert scope["other"] is False, "a tenant admin must not administer another tenant"
    page = client.get(kit.admin_index(), follow_redirects=True)
    assert page.status_code == 200, f"the signed-in admin cannot open the integration's pages: {page.status_code}"


def test_a_web_sign_in_grants_no_admin_rights(kit):
    user = kit.new_user("web")
    client = kit.app.test_client()
    answer = kit.sign_in(client, user.id, "web")
    assert answer.status_code < 400, f"login_user(..., 'web') answered {answer.status_code}"
    assert kit.scope(client)["admin"] is False, "a user signed in to the web client must not be a tenant admin"
    assert client.get(kit.admin_index()).status_code != 200, "a web user reached the admin pages"


def test_an_admin_sign_in_of_a_plain_user_grants_nothing(kit):
    user = kit.new_user("plain")
    client = kit.app.test_client()
    kit.sign_in(client, user.id, "admin")
    assert kit.scope(client)["admin"] is False, \
        "login_user(..., 'admin') for a user who is no admin must not make them a tenant admin"


def test_the_app_token_is_a_json_object(kit):
    user = kit.new_user("app")
    token = kit.read(lambda host: host.issue_app_token(kit.tenant, user.id))
    assert isinstance(token, dict) and token, "issue_app_token returns a non-empty dict"
    json.dumps(token)


# === users and extensions =========================================================================================


def test_a_created_user_is_enabled_and_readable(kit):
    user = kit.new_user("create", department="Kit Dept", job_title="Tester", mobile="+12065550199")
    assert isinstance(user, HostUser) and isinstance(user.id, str) and user.id, "create_user returns a HostUser"
    assert user.tenant == kit.tenant and user.enabled is True and user.username
    read = kit.get(user.id)
    assert read is not None, "get_user cannot find the user create_user just made (after commit)"
    assert (read.id, read.extension, read.first_name, read.last_name, read.display_name, read.email, read.mobile,
            read.department, read.job_title, read.enabled) == (
        user.id, user.extension, "Kit", "Create", "Kit Create", user.email, "+12065550199", "Kit Dept", "Tester",
        True), f"get_user does not return what create_user stored: {read!r}"
    listed = [u for u in kit.read(lambda host: host.list_users(kit.tenant)) if u.id == user.id]
    assert len(listed) == 1, "list_users must list the new user exactly once"


def test_users_of_one_tenant_are_invisible_in_another(kit):
    if not kit.h.other_tenant:
        pytest.skip("the harness has no other_tenant")
    user = kit.new_user("isolated")
    assert kit.get(user.id, kit.h.other_tenant) is None, "get_user of another tenant returned this tenant's user"
    assert user.id not in {u.id for u in kit.read(lambda host: host.list_users(kit.h.other_tenant))}


def test_an_unknown_user_id_is_none(kit):
    for user_id in ("pbx365-kit-no-such-user", "987654321"):
        assert kit.get(user_id) is None, f"get_user({user_id!r}) must be None for a user that does not exist"


def test_a_taken_extension_is_refused_with_extension_in_use(kit):
    user = kit.new_user("first")
    assert kit.read(lambda host: host.is_extension_free(kit.tenant, user.extension)) is False, \
        "is_extension_free is True for an extension a user has"
    before = len(kit.read(lambda host: host.list_users(kit.tenant)))
    with pytest.raises(ExtensionInUseError):
        with kit.step() as host:
            made = host.create_user(kit.tenant, "pbx365-kit-second@kit.example", user.extension,
                                    UserFields(first_name="Kit", last_name="Second"))
            kit.created.append((made.id, made.extension))
    assert len(kit.read(lambda host: host.list_users(kit.tenant))) == before, \
        "a refused create_user left a user behind"


def test_a_taken_username_is_made_unique_or_refused_cleanly(kit):
    user = kit.new_user("same")
    extension = kit.free_extension()
    try:
        with kit.step() as host:
            twin = host.create_user(kit.tenant, user.username, extension, UserFields(first_name="Twin"))
    except PBX365Error:
        return  # refused with a reason the run records per user
    kit.created.append((twin.id, twin.extension))
    assert twin.id != user.id, "create_user with a taken username returned the existing user"


def test_an_update_changes_given_fields_and_leaves_none_alone(kit):
    user = kit.new_user("update", department="Before", job_title="Keeps")
    with kit.step() as host:
        returned = host.update_user(kit.tenant, user.id, UserFields(department="After", display_name="Kit Renamed"))
    assert isinstance(returned, HostUser) and returned.department == "After"
    read = kit.get(user.id)
    assert (read.department, read.display_name) == ("After", "Kit Renamed"), "update_user did not store the fields"
    assert (read.job_title, read.first_name, read.last_name, read.email, read.extension) == (
        "Keeps", "Kit", "Update", user.email, user.extension), "update_user changed a field given as None"


def test_disabled_users_stay_listed_and_can_be_enabled_again(kit):
    user = kit.new_user("toggle")
    with kit.step() as host:
        host.set_user_enabled(kit.tenant, user.id, False)
    assert kit.get(user.id).enabled is False, "set_user_enabled(False) did not disable the user"
    assert user.id in {u.id for u in kit.read(lambda host: host.list_users(kit.tenant))}, \
        "list_users must list disabled users too (deprovisioning relies on it)"
    with kit.step() as host:
        host.set_user_enabled(kit.tenant, user.id, True)
    assert kit.get(user.id).enabled is True


def test_a_deleted_user_is_gone_and_frees_the_extension(kit):
    user = kit.new_user("delete")
    with kit.step() as host:
        host.delete_user(kit.tenant, user.id)
    assert kit.get(user.id) is None, "get_user still finds a deleted user"
    assert user.id not in {u.id for u in kit.read(lambda host: host.list_users(kit.tenant))}
    assert kit.read(lambda host: host.is_extension_free(kit.tenant, user.extension)) is True, \
        "a deleted user's extension is not free again"


@pytest.mark.parametrize("method", ["update_user", "set_user_enabled", "delete_user", "set_caller_id", "set_photo",
                                    "set_group_membership", "get_presence", "set_presence",
                                    "list_personal_contacts", "upsert_personal_contact"])
def test_a_call_for_a_missing_user_raises_a_pbx365_error(kit, method):
    """The extension records a PBX365Error as one user's error and goes on; anything else fails the whole run."""
    missing = "987654321"
    args = {"update_user": (UserFields(department="x"),), "set_user_enabled": (False,), "delete_user": (),
            "set_caller_id": ("+14255550100",), "set_photo": (b"\xff\xd8\xff", "image/jpeg"),
            "set_group_membership": None, "get_presence": (), "set_presence": ("away", "calendar"),
            "list_personal_contacts": (SOURCE,), "upsert_personal_contact": (_entry("k1", "Nobody"),)}[method]
    with kit.step() as host:
        host.ensure_group(kit.tenant, GROUP)
    with pytest.raises(PBX365Error):
        with kit.step() as host:
            if method == "set_group_membership":
                host.set_group_membership(kit.tenant, GROUP, missing, True)
            else:
                getattr(host, method)(kit.tenant, missing, *args)


def test_writes_join_the_extensions_transaction(kit):
    if not kit.h.transactional:
        pytest.skip("the harness says the host's writes are not transactional: a crash mid-batch can leave a "
                    "half-applied user behind")
    user = kit.new_user("rollback", department="Committed")
    extension = kit.free_extension()
    with kit.app.app_context():
        kit.host.update_user(kit.tenant, user.id, UserFields(department="Rolled back"))
        made = kit.host.create_user(kit.tenant, "pbx365-kit-ghost@kit.example", extension, UserFields())
        kit.db.session.rollback()
    assert kit.get(user.id).department == "Committed", "a rolled-back update_user was kept"
    if kit.get(made.id) is not None:
        kit.created.append((made.id, made.extension))
        pytest.fail("a rolled-back create_user was kept")


# === batch operations =============================================================================================


def test_a_batch_applies_every_good_change_and_fails_each_bad_one_alone(kit):
    """Through :func:`flask_pbx365.host.apply_users`, as user sync calls it: the host's own ``apply_users``
    when it has one, else the per-user methods."""
    keep, gone, toggled = kit.new_user("keep"), kit.new_user("gone"), kit.new_user("toggled", department="Old")
    with kit.step() as host:
        host.ensure_group(kit.tenant, GROUP)
    free = kit.free_extension()
    changes = [
        UserChange("new", username="pbx365-kit-batch-new@kit.example", extension=free,
                   fields=UserFields(first_name="Kit", last_name="Batch", email="pbx365-kit-batch@kit.example"),
                   set_caller_id=True, caller_id="+14255550177", join_groups=(GROUP,)),
        UserChange("taken", username="pbx365-kit-batch-taken@kit.example", extension=keep.extension,
                   fields=UserFields(first_name="Kit", last_name="Taken")),
        UserChange("missing", user_id="987654321", fields=UserFields(department="Nowhere")),
        UserChange("update", user_id=toggled.id, fields=UserFields(department="New"), enabled=False,
                   set_caller_id=True, caller_id="+14255550178", join_groups=(GROUP,)),
        UserChange("delete", user_id=gone.id, delete=True),
    ]
    with kit.step() as host:
        results = apply_users(host, kit.tenant, changes, kit.db.session.begin_nested)
    assert [r.key for r in results] == [c.key for c in changes], "one result per change, in order"
    by_key = {r.key: r for r in results}
    if by_key["new"].ok and by_key["new"].user is not None:
        kit.created.append((by_key["new"].user.id, by_key["new"].user.extension))
    assert isinstance(by_key["taken"].error, ExtensionInUseError), \
        f"a create on a taken extension must fail with ExtensionInUseError, got {by_key['taken'].error!r}"
    assert isinstance(by_key["missing"].error, PBX365Error), "a change of a missing user must fail with its reason"
    for key in ("new", "update", "delete"):
        assert by_key[key].ok, f"the good change {key!r} failed next to the bad ones: {by_key[key].error}"
    made = by_key["new"].user
    assert made is not None and made.extension == free, "a create's result carries the new user"
    new = kit.get(made.id)
    assert (new.first_name, new.caller_id, new.enabled, GROUP in new.groups) == ("Kit", "+14255550177", True, True)
    updated = kit.get(toggled.id)
    assert (updated.department, updated.enabled, updated.caller_id, GROUP in updated.groups) == (
        "New", False, "+14255550178", True), f"the update was not applied whole: {updated!r}"
    assert kit.get(gone.id) is None, "the deleted user is still there"
    names = [u.username for u in kit.read(lambda host: host.list_users(kit.tenant))]
    assert not any("batch-taken" in n for n in names), "the refused create left a user behind"


def test_batch_reads_find_existing_users_only(kit):
    one, two = kit.new_user("readone"), kit.new_user("readtwo")
    found = kit.read(lambda host: get_users(host, kit.tenant, [one.id, "987654321", two.id, one.id]))
    assert [u.id for u in found] == [one.id, two.id], "get_users returns each existing user once, in order"
    if kit.h.other_tenant:
        assert kit.read(lambda host: get_users(host, kit.h.other_tenant, [one.id])) == [], \
            "get_users of another tenant returned this tenant's user"


def test_a_rolled_back_batch_leaves_nothing(kit):
    if not kit.h.transactional:
        pytest.skip("the harness says the host's writes are not transactional")
    user = kit.new_user("batchback", department="Committed")
    free = kit.free_extension()
    with kit.app.app_context():
        apply_users(kit.host, kit.tenant, [
            UserChange("a", user_id=user.id, fields=UserFields(department="Rolled back")),
            UserChange("b", username="pbx365-kit-batch-ghost@kit.example", extension=free, fields=UserFields())],
            kit.db.session.begin_nested)
        kit.db.session.rollback()
    assert kit.get(user.id).department == "Committed", "a rolled-back batch update was kept"
    assert kit.read(lambda host: host.is_extension_free(kit.tenant, free)), "a rolled-back batch create was kept"


# === extension groups, photos, caller ID ==========================================================================


def test_group_membership_is_idempotent_and_per_user(kit):
    one, two = kit.new_user("member"), kit.new_user("bystander")
    with kit.step() as host:
        host.ensure_group(kit.tenant, GROUP)
        host.ensure_group(kit.tenant, GROUP)  # twice: "create if missing"
        host.set_group_membership(kit.tenant, GROUP, one.id, True)
        host.set_group_membership(kit.tenant, GROUP, two.id, True)
    with kit.step() as host:
        host.set_group_membership(kit.tenant, GROUP, one.id, True)  # again: no duplicate membership
    assert kit.get(one.id).groups.count(GROUP) == 1, "set_group_membership(True) twice must leave one membership"
    with kit.step() as host:
        host.set_group_membership(kit.tenant, GROUP, one.id, False)
        host.set_group_membership(kit.tenant, GROUP, one.id, False)  # removing twice is no error
    assert GROUP not in kit.get(one.id).groups, "set_group_membership(False) did not remove the membership"
    assert GROUP in kit.get(two.id).groups, "removing one member changed another user's membership"


def test_a_photo_is_stored_replaced_and_removed(kit):
    user = kit.new_user("photo")
    first, second = b"\xff\xd8\xff\xe0kit-photo-one", b"\xff\xd8\xff\xe0kit-photo-two"
    for data in (first, second):
        with kit.step() as host:
            host.set_photo(kit.tenant, user.id, data, "image/jpeg")
        reported = kit.get(user.id).photo_sha256
        assert reported in (None, hashlib.sha256(data).hexdigest()), \
            "HostUser.photo_sha256 must be the SHA-256 of the stored photo (or None when the host keeps no photos)"
    with kit.step() as host:
        host.set_photo(kit.tenant, user.id, None)
    assert kit.get(user.id).photo_sha256 is None, "set_photo(None) must remove the photo"


def test_caller_id_is_set_and_cleared(kit):
    user = kit.new_user("callerid")
    with kit.step() as host:
        host.set_caller_id(kit.tenant, user.id, "+14255550123")
    assert kit.get(user.id).caller_id == "+14255550123", "set_caller_id did not store the E.164 number"
    with kit.step() as host:
        host.set_caller_id(kit.tenant, user.id, None)
    assert kit.get(user.id).caller_id is None, "set_caller_id(None) must clear the caller ID"


# === phonebooks ===================================================================================================


def _personal(kit: Kit, user_id: str, source: str = SOURCE) -> dict[str, PhonebookEntry]:
    return {e.key: e for e in kit.read(lambda host: host.list_personal_contacts(kit.tenant, user_id, source))}


def _company(kit: Kit, source: str = SHARED_SOURCE, tenant: str | None = None) -> dict[str, PhonebookEntry]:
    return {e.key: e for e in kit.read(lambda host: host.list_company_contacts(tenant or kit.tenant, source))}


def _upsert_personal(kit: Kit, user_id: str, entry: PhonebookEntry) -> None:
    with kit.step() as host:
        host.upsert_personal_contact(kit.tenant, user_id, entry)
    kit.personal.append((kit.tenant, user_id, entry.source, entry.key))


def _upsert_company(kit: Kit, entry: PhonebookEntry) -> None:
    with kit.step() as host:
        host.upsert_company_contact(kit.tenant, entry)
    kit.company.append((kit.tenant, entry.source, entry.key))


def test_personal_entries_are_upserted_by_key(kit):
    user = kit.new_user("book")
    first = _entry("kit-a", "Ann Able")
    _upsert_personal(kit, user.id, first)
    _same_entry(_personal(kit, user.id)["kit-a"], first)
    changed = _entry("kit-a", "Ann Baker", company="Other Co",
                     phones={"business": ["+14255550111", "+14255550112"], "mobile": [], "home": ["+3120555"]},
                     emails=["ann@other.example", "ann2@other.example"])
    _upsert_personal(kit, user.id, changed)
    _upsert_personal(kit, user.id, _entry("kit-b", "Ben Best"))
    found = _personal(kit, user.id)
    assert sorted(found) == ["kit-a", "kit-b"], f"an upsert with an existing key must replace it, got {sorted(found)}"
    _same_entry(found["kit-a"], changed)
    with kit.step() as host:
        host.delete_personal_contact(kit.tenant, user.id, SOURCE, "kit-a")
        host.delete_personal_contact(kit.tenant, user.id, SOURCE, "kit-never-there")  # no error
    assert sorted(_personal(kit, user.id)) == ["kit-b"], "delete_personal_contact removed the wrong entries"


def test_personal_entries_are_kept_apart_by_source_and_user(kit):
    one, two = kit.new_user("bookone"), kit.new_user("booktwo")
    _upsert_personal(kit, one.id, _entry("kit-shared-key", "From Source A"))
    _upsert_personal(kit, one.id, _entry("kit-shared-key", "From Source B", source=SHARED_SOURCE))
    assert _personal(kit, one.id)["kit-shared-key"].name == "From Source A", \
        "the same key from another source overwrote the entry: keys are unique per source only"
    assert _personal(kit, one.id, SHARED_SOURCE)["kit-shared-key"].name == "From Source B"
    assert _personal(kit, two.id) == {}, "one user's phonebook entries are listed for another user"
    with kit.step() as host:
        host.delete_personal_contact(kit.tenant, one.id, SHARED_SOURCE, "kit-shared-key")
    assert "kit-shared-key" in _personal(kit, one.id), "deleting from one source removed another source's entry"


def test_entries_the_user_made_are_never_listed_or_touched(kit):
    h = kit.h
    if not (h.add_user_contact and h.user_contact_names):
        pytest.skip("the harness has no add_user_contact/user_contact_names hooks")
    user = kit.new_user("ownbook")
    with kit.step():
        h.add_user_contact(kit.tenant, user.id, "Kit Own Friend")
    _upsert_personal(kit, user.id, _entry("kit-synced", "Kit Synced"))
    assert [e.name for e in _personal(kit, user.id).values()] == ["Kit Synced"], \
        "list_personal_contacts(source) lists entries the user made (the sync would delete them)"
    with kit.step() as host:
        host.delete_personal_contact(kit.tenant, user.id, SOURCE, "kit-synced")
    with kit.step():
        names = h.user_contact_names(kit.tenant, user.id)
    assert "Kit Own Friend" in names, "an entry the user made was removed by the sync's phonebook calls"


def test_phonebook_batches_upsert_by_key_and_delete_only_their_source(kit):
    """Through :func:`flask_pbx365.host.apply_phonebook`: the host's batch write, else entry by entry."""
    user = kit.new_user("batchbook")
    _upsert_personal(kit, user.id, _entry("kit-old", "Old Entry"))
    _upsert_personal(kit, user.id, _entry("kit-other", "Other Source", source=SHARED_SOURCE))
    fresh, changed = _entry("kit-new", "New Entry"), _entry("kit-old", "Old Entry Renamed", emails=[])
    with kit.step() as host:
        errors = apply_phonebook(host, kit.tenant, user.id, SOURCE, [fresh, changed], [], kit.db.session.begin_nested)
    kit.personal.append((kit.tenant, user.id, SOURCE, "kit-new"))
    assert errors == {}, f"a valid phonebook batch failed: {errors}"
    found = _personal(kit, user.id)
    assert sorted(found) == ["kit-new", "kit-old"], "a batch upsert must replace by key and add new keys"
    _same_entry(found["kit-old"], changed)
    _same_entry(found["kit-new"], fresh)
    with kit.step() as host:
        apply_phonebook(host, kit.tenant, user.id, SOURCE, [], ["kit-old", "kit-other"], kit.db.session.begin_nested)
    assert sorted(_personal(kit, user.id)) == ["kit-new"], "a batch delete missed its key"
    assert "kit-other" in _personal(kit, user.id, SHARED_SOURCE), "a batch delete removed another source's entry"
    with kit.step() as host:
        apply_phonebook(host, kit.tenant, None, SHARED_SOURCE, [_entry("kit-co", "Batch Co", source=SHARED_SOURCE)],
                        [], kit.db.session.begin_nested)
    kit.company.append((kit.tenant, SHARED_SOURCE, "kit-co"))
    assert list(_company(kit)) == ["kit-co"], "a company batch upsert was not stored"
    with kit.step() as host:
        keys = (phonebook_keys(host, kit.tenant, user.id, SOURCE), phonebook_keys(host, kit.tenant, None, SHARED_SOURCE),
                phonebook_keys(host, kit.tenant, user.id, SHARED_SOURCE))
    assert keys == ({"kit-new"}, {"kit-co"}, {"kit-other"}), \
        f"phonebook_keys must list the keys of one phonebook's entries of one source: {keys}"
    empty = kit.new_user("emptybook")
    with kit.step() as host:
        many = personal_phonebook_keys(host, kit.tenant, [user.id, empty.id], SOURCE)
    assert many == {user.id: {"kit-new"}, empty.id: set()}, \
        f"personal_phonebook_keys must give each user's keys of one source (empty sets included): {many}"


def test_company_entries_are_upserted_by_key_and_kept_apart(kit):
    _upsert_company(kit, _entry("kit-c", "Reception", source=SHARED_SOURCE))
    _upsert_company(kit, _entry("kit-c", "Front Desk", source=SHARED_SOURCE,
                                phones={"business": ["+14255550000"], "mobile": [], "home": []}))
    _upsert_company(kit, _entry("kit-d", "Support", source=SHARED_SOURCE))
    found = _company(kit)
    assert sorted(found) == ["kit-c", "kit-d"] and found["kit-c"].name == "Front Desk", \
        "upsert_company_contact must replace the entry with the same source and key"
    assert _company(kit, "microsoft365-kit:other@kit.example") == {}, "company entries leak between sources"
    if kit.h.other_tenant:
        assert _company(kit, tenant=kit.h.other_tenant) == {}, "company entries leak into another tenant"
    user = kit.new_user("nocompany")
    assert _personal(kit, user.id, SHARED_SOURCE) == {}, "company entries are listed as a user's personal ones"
    with kit.step() as host:
        host.delete_company_contact(kit.tenant, SHARED_SOURCE, "kit-c")
        host.delete_company_contact(kit.tenant, SHARED_SOURCE, "kit-never-there")
    assert sorted(_company(kit)) == ["kit-d"]


# === presence =====================================================================================================


def test_a_new_user_has_a_valid_presence(kit):
    user = kit.new_user("presence")
    status, source = kit.read(lambda host: host.get_presence(kit.tenant, user.id))
    assert status in PRESENCE_STATUSES, f"get_presence returned status {status!r}, not one of PRESENCE_STATUSES"
    assert source in PRESENCE_SOURCES, f"get_presence returned source {source!r}, not one of PRESENCE_SOURCES"


def test_every_status_and_source_round_trips_for_that_user_only(kit):
    user, other = kit.new_user("lamp"), kit.new_user("otherlamp")
    before = kit.read(lambda host: host.get_presence(kit.tenant, other.id))
    for status in PRESENCE_STATUSES:
        for source in PRESENCE_SOURCES:
            with kit.step() as host:
                host.set_presence(kit.tenant, user.id, status, source)  # type: ignore[arg-type]
            assert kit.read(lambda host: host.get_presence(kit.tenant, user.id)) == (status, source), \
                f"set_presence({status!r}, {source!r}) did not read back"
    assert kit.read(lambda host: host.get_presence(kit.tenant, other.id)) == before, \
        "set_presence changed another user's presence"
    many = kit.read(lambda host: get_presences(host, kit.tenant, [user.id, other.id, "kit-no-such-user"]))
    assert many == {user.id: kit.read(lambda host: host.get_presence(kit.tenant, user.id)), other.id: before}, \
        f"get_presences must give each existing user's (status, source), as get_presence does: {many}"


def test_call_state_when_the_host_reports_it(kit):
    user = kit.new_user("caller")
    query = getattr(kit.read(lambda host: host), "get_call_state", None)
    if not callable(query):
        pytest.skip("the host has no get_call_state (optional: Teams presence then trusts the reported states)")
    state = kit.read(lambda host: host.get_call_state(kit.tenant, user.id))
    assert state in CALL_STATES, f"get_call_state returned {state!r}, not one of {CALL_STATES}"


# === URLs and mail ================================================================================================


def test_public_urls_are_absolute_and_distinct(kit):
    urls = kit.read(lambda host: host.public_urls(kit.tenant))
    assert isinstance(urls, PublicURLs), "public_urls returns a PublicURLs"
    for name, url in (("portal", urls.portal), ("sbc", urls.sbc)):
        if url is None and name == "sbc":
            continue
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.netloc, f"the {name} URL {url!r} is not absolute"
        assert not parts.query and not parts.fragment, f"the {name} URL {url!r} carries a query or fragment"
    if urls.sbc:
        assert urlsplit(urls.sbc).netloc != urlsplit(urls.portal).netloc, \
            "the SBC URL must be a second domain, not the portal's"


def test_admin_emails_are_addresses(kit):
    emails = kit.read(lambda host: host.admin_emails(kit.tenant))
    assert isinstance(emails, list) and all(isinstance(e, str) and "@" in e for e in emails), \
        f"admin_emails returns a list of addresses, got {emails!r}"


def test_mail_goes_out_through_the_host_transport(kit):
    message = MailMessage(to=["kit@example.invalid"], subject="PBX365 conformance kit test message",
                          body="<p>Sent by the conformance kit.</p>", body_type="html",
                          attachments=[MailAttachment("kit.txt", "text/plain", b"kit")])
    with kit.step() as host:
        host.send_mail(kit.tenant, message)
    if kit.h.sent_mail is None:
        return
    with kit.step():
        sent = kit.h.sent_mail()

    def fields(item: Any) -> tuple[list, str]:
        if isinstance(item, dict):
            return list(item.get("to") or item.get("recipients") or []), item.get("subject", "")
        return list(item.to), item.subject

    assert (["kit@example.invalid"], message.subject) in [fields(m) for m in sent], \
        "send_mail did not deliver the message (it is not in the harness's sent_mail())"
