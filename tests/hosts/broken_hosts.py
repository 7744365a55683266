"""Hosts with one planted bug each: the conformance kit must name it (tests/hosts/test_conformance_kit.py)."""
from __future__ import annotations

import os

from flask import session

from flask_pbx365.host import PhonebookEntry

from .memory_host import MemoryHost, make_harness


class DuplicatesOnUpsert(MemoryHost):
    def upsert_personal_contact(self, tenant, user_id, entry):
        self._user(tenant, user_id)
        book = self._book(user_id, entry.source)
        book[entry.key if entry.key not in book else f"{entry.key}-{len(book)}"] = entry


class ListsUserMadeEntries(MemoryHost):
    def list_personal_contacts(self, tenant, user_id, source):
        own = [PhonebookEntry(key=f"own-{i}", source=source, name=n) for i, n in
               enumerate(self.own_entries.get(user_id, []))]
        return super().list_personal_contacts(tenant, user_id, source) + own


class OverwritesWithNone(MemoryHost):
    def update_user(self, tenant, user_id, fields):
        user = self._user(tenant, user_id)
        for key, value in vars(fields).items():
            setattr(user, key, value)
        return user


class IgnoresTakenExtensions(MemoryHost):
    def is_extension_free(self, tenant, extension):
        return True


class AdminOfEveryTenant(MemoryHost):
    def is_tenant_admin(self, tenant):
        return session.get("admin") is True


class CrashesOnMissingUsers(MemoryHost):
    def _user(self, tenant, user_id):
        return self.users[user_id]


class HidesDisabledUsers(MemoryHost):
    def list_users(self, tenant):
        return [u for u in super().list_users(tenant) if u.enabled]


class WebSignInMakesAdmins(MemoryHost):
    def login_user(self, tenant, user_id, target):
        response = super().login_user(tenant, user_id, target)
        session["admin"] = True
        return response


BROKEN = {cls.__name__: cls for cls in (DuplicatesOnUpsert, ListsUserMadeEntries, OverwritesWithNone,
                                        IgnoresTakenExtensions, AdminOfEveryTenant, CrashesOnMissingUsers,
                                        HidesDisabledUsers, WebSignInMakesAdmins)}


def make_broken_harness():
    """``--pbx365-host tests.hosts.broken_hosts:make_broken_harness`` with ``KIT_BROKEN_HOST`` naming the class."""
    return make_harness(BROKEN[os.environ["KIT_BROKEN_HOST"]]())

