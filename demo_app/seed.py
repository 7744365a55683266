"""Demo data: the system admin, tenants ``acme`` and ``globex`` with an admin, users, a group and phonebooks.

Idempotent: the system admin and each tenant are created only when missing, and a tenant's users, group and
phonebook only together with the tenant, so a second run leaves everything (including admins' edits) alone.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa

from . import directory
from .models import CompanyContact, ExtensionGroup, PersonalContact, SystemAdmin, Tenant, db

SYSADMIN = ("sysadmin", "sysadmin")

# username, password, role, extension, first, last, department, job title, email domain (None: no email)
TENANTS: dict[str, dict] = {
    "acme": {
        "name": "Acme Corp",
        "domain": "acme.example",
        "users": [
            ("admin", "admin", "admin", "100", "Acme", "Administrator", "IT", "PBX Administrator"),
            ("alice", "alice", "user", "101", "Alice", "Smith", "Sales", "Sales Manager"),
            ("bob", "bob", "user", "102", "Bob", "Jones", "Support", "Support Engineer"),
            ("frontdesk", "frontdesk", "user", "103", "Front", "Desk", "Reception", "Receptionist"),
        ],
        "group": ("Sales", ["alice", "frontdesk"]),
    },
    "globex": {
        "name": "Globex",
        "domain": "globex.example",
        "users": [
            ("admin", "admin", "admin", "100", "Globex", "Administrator", "IT", "PBX Administrator"),
            ("hank", "hank", "user", "101", "Hank", "Scorpio", "Management", "CEO"),
            ("homer", "homer", "user", "102", "Homer", "Simpson", "Operations", "Safety Inspector"),
            ("frank", "frank", "user", "103", "Frank", "Grimes", "Operations", "Safety Inspector"),
        ],
        "group": ("Operations", ["homer", "frank"]),
    },
}

COMPANY_CONTACTS = [
    ("Building Security", "Facilities", {"business": ["+1 212 555 0900"], "mobile": [], "home": []}),
    ("IT Helpdesk", "Outsourced IT", {"business": ["+1 800 555 0901"], "mobile": [], "home": []}),
    ("Taxi Service", "City Cabs", {"business": ["+1 212 555 0902"], "mobile": ["+1 917 555 0902"], "home": []}),
]


def seed() -> list[str]:
    """Create whatever demo data is missing; returns what was done, one line each. Commits."""
    done: list[str] = []
    if db.session.scalar(sa.select(SystemAdmin).where(SystemAdmin.username == SYSADMIN[0])) is None:
        admin = SystemAdmin(username=SYSADMIN[0])
        admin.set_password(SYSADMIN[1])
        db.session.add(admin)
        done.append(f"created system admin {SYSADMIN[0]}")
    for slug, spec in TENANTS.items():
        if directory.get_tenant(slug) is not None:
            done.append(f"tenant {slug} exists; left alone")
            continue
        _seed_tenant(slug, spec)
        done.append(f"created tenant {slug} with {len(spec['users'])} users")
    db.session.commit()
    return done


def _seed_tenant(slug: str, spec: dict) -> None:
    tenant = Tenant(slug=slug, name=spec["name"])
    db.session.add(tenant)
    db.session.flush()
    users = {}
    for name, password, role, extension, first, last, department, title in spec["users"]:
        users[name] = directory.create_local_user(
            tenant, username=name, password=password, role=role, extension=extension, first_name=first,
            last_name=last, email=f"{name}@{spec['domain']}", department=department, job_title=title)
    group_name, members = spec["group"]
    db.session.add(ExtensionGroup(tenant_id=tenant.id, name=group_name, members=[users[m] for m in members]))
    for name, company, phones in COMPANY_CONTACTS:
        db.session.add(CompanyContact(tenant_id=tenant.id, key=str(uuid.uuid4()), source="admin", name=name,
                                      company=company, phones=phones, emails=[]))
    someone = users[spec["users"][1][0]]
    for name, phones, emails in (
        ("Mom", {"business": [], "mobile": ["+1 917 555 0150"], "home": ["+1 718 555 0150"]}, []),
        ("Dentist", {"business": ["+1 212 555 0151"], "mobile": [], "home": []}, ["appointments@dental.example"]),
    ):
        db.session.add(PersonalContact(user_id=someone.id, key=str(uuid.uuid4()), source="user", name=name,
                                       company="", phones=phones, emails=emails))
    db.session.flush()
