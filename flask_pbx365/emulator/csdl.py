"""Microsoft Graph's CSDL ($metadata) as a lookup: entity/complex types, their properties, and request paths.

The schema files (``$PBX365_GRAPH_METADATA/v1.0-*.csdl``, else the gzipped copies bundled in ``metadata/``) are
parsed lazily with ElementTree, once per process per file. Type names are fully qualified
(``microsoft.graph.user``); aliases (``graph.``) are resolved.
"""
from __future__ import annotations

import gzip
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
BUNDLED_DIR = Path(__file__).with_name("metadata")
_lock = threading.Lock()


@dataclass
class StructuredType:
    """An entity or complex type: its own properties and navigation properties (name -> type)."""

    name: str
    kind: str  # "entity" | "complex"
    base: str | None
    properties: dict[str, str] = field(default_factory=dict)
    navigation: dict[str, str] = field(default_factory=dict)


class Schema:
    """One CSDL document."""

    def __init__(self, path: str | os.PathLike):
        self.types: dict[str, StructuredType] = {}
        self.enums: dict[str, list[str]] = {}
        self.entity_sets: dict[str, str] = {}
        self.singletons: dict[str, str] = {}
        #: binding type (``Collection(microsoft.graph.contact)``) -> bound action/function name -> return type
        self.operations: dict[str, dict[str, str | None]] = {}
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as fh:
            root = ET.parse(fh).getroot()
        for schema in root.iter(f"{EDM}Schema"):
            ns = schema.get("Namespace", "")
            alias = schema.get("Alias")
            aliases = {alias: ns} if alias else {}
            for el in schema:
                tag = el.tag.replace(EDM, "")
                name = f"{ns}.{el.get('Name')}"
                if tag in ("EntityType", "ComplexType"):
                    t = StructuredType(name, "entity" if tag == "EntityType" else "complex",
                                       self._qualify(el.get("BaseType"), aliases))
                    for p in el:
                        ptag = p.tag.replace(EDM, "")
                        if ptag == "Property":
                            t.properties[p.get("Name")] = self._qualify(p.get("Type"), aliases)
                        elif ptag == "NavigationProperty":
                            t.navigation[p.get("Name")] = self._qualify(p.get("Type"), aliases)
                    self.types[name] = t
                elif tag == "EnumType":
                    self.enums[name] = [m.get("Name") for m in el.iter(f"{EDM}Member")]
                elif tag in ("Action", "Function") and el.get("IsBound") == "true":
                    params = el.findall(f"{EDM}Parameter")
                    ret = el.find(f"{EDM}ReturnType")
                    if params:
                        binding = self._qualify(params[0].get("Type"), aliases)
                        self.operations.setdefault(binding, {}).setdefault(
                            el.get("Name"), self._qualify(ret.get("Type"), aliases) if ret is not None else None)
                elif tag == "EntityContainer":
                    for c in el:
                        ctag = c.tag.replace(EDM, "")
                        if ctag == "EntitySet":
                            self.entity_sets[c.get("Name")] = self._qualify(c.get("EntityType"), aliases)
                        elif ctag == "Singleton":
                            self.singletons[c.get("Name")] = self._qualify(c.get("Type"), aliases)

    @staticmethod
    def _qualify(type_name: str | None, aliases: dict[str, str]) -> str | None:
        if not type_name:
            return None
        coll = type_name.startswith("Collection(")
        inner = type_name[11:-1] if coll else type_name
        head, _, tail = inner.rpartition(".")
        if head in aliases:
            inner = f"{aliases[head]}.{tail}"
        elif head == "graph":
            inner = f"microsoft.graph.{tail}"
        return f"Collection({inner})" if coll else inner

    def _chain(self, type_name: str) -> list[StructuredType]:
        out = []
        name: str | None = type_name
        while name and name in self.types:
            out.append(self.types[name])
            name = self.types[name].base
        return out

    def properties(self, type_name: str) -> dict[str, str]:
        """All structural properties of a type including its base types (name -> type)."""
        props: dict[str, str] = {}
        for t in reversed(self._chain(type_name)):
            props.update(t.properties)
        return props

    def navigation(self, type_name: str) -> dict[str, str]:
        nav: dict[str, str] = {}
        for t in reversed(self._chain(type_name)):
            nav.update(t.navigation)
        return nav

    def member(self, type_name: str, name: str) -> str | None:
        """The type of property or navigation property ``name`` of ``type_name`` (None when absent).

        Graph matches segment names case-insensitively (its nextLinks say ``contactfolders``), so does this."""
        members = {**self.properties(type_name), **self.navigation(type_name)}
        if name in members:
            return members[name]
        return next((t for n, t in members.items() if n.lower() == name.lower()), None)

    def _operation_names(self) -> set[str]:
        """Lower-case names of every bound action/function (an id is never one of them)."""
        if not hasattr(self, "_op_names"):
            self._op_names = {n.lower() for ops in self.operations.values() for n in ops}
        return self._op_names

    def operation(self, binding: str, name: str) -> tuple[bool, str | None]:
        """Whether an action/function ``name`` is bound to ``binding`` (or to one of its base types), and its
        return type (None for an action without one). ``binding`` may be ``Collection(...)``."""
        coll = binding.startswith("Collection(")
        for t in self._chain(binding[11:-1] if coll else binding):
            ops = self.operations.get(f"Collection({t.name})" if coll else t.name, {})
            for op, ret in ops.items():
                if op.lower() == name.lower():
                    return True, ret
        return False, None

    def resolve_path(self, path: str) -> str:
        """The type a Graph request path answers with, e.g. ``/users/{id}/contactFolders/{id}/contacts/delta``
        → ``Collection(microsoft.graph.contact)``. Key segments, casts, ``$value``/``$count`` and the actions and
        functions bound in this schema (``delta``, ``sendMail``; ``Edm.Untyped`` when one returns nothing) are
        handled; an unknown segment raises ``KeyError`` (e.g. contact ``delta`` in the 21Vianet schema)."""
        segs = [s for s in path.strip("/").split("/") if s]
        if segs and segs[0] in ("v1.0", "beta"):
            segs = segs[1:]
        if not segs:
            raise KeyError(path)
        first = segs.pop(0)
        if first in self.entity_sets:
            current = f"Collection({self.entity_sets[first]})"
        elif first in self.singletons:
            current = self.singletons[first]
        else:
            raise KeyError(f"unknown entity set or singleton {first!r}")
        for seg in segs:
            is_coll = current.startswith("Collection(")
            base = current[11:-1] if is_coll else current
            if seg in ("$value", "$count", "$ref"):
                continue
            name = seg[len("microsoft.graph."):] if seg.startswith("microsoft.graph.") else seg
            name = name[:-2] if name.endswith("()") else name
            if seg.startswith("microsoft.graph.") and f"microsoft.graph.{name}" in self.types:  # a type cast
                current = f"Collection(microsoft.graph.{name})" if is_coll else f"microsoft.graph.{name}"
                continue
            bound, returns = self.operation(current, name)
            if bound:
                current = returns or "Edm.Untyped"
                continue
            if is_coll:
                if name.lower() in self._operation_names():
                    raise KeyError(f"{name!r} is not bound to {current} in this schema")
                if self.member(base, seg) is None:  # a key segment
                    current = base
                    continue
                raise KeyError(f"navigation from a collection needs a key before {seg!r}")
            member = self.member(base, seg)
            if member is None:
                raise KeyError(f"{base} has no member or bound operation {seg!r}")
            current = member
        return current


@lru_cache(maxsize=None)
def _load(path: str) -> Schema:
    return Schema(path)


def metadata_path(cloud_file: str = "v1.0-Prod.csdl") -> Path:
    """Where ``cloud_file`` is read from (see the module docstring for the search order)."""
    folder = os.environ.get("PBX365_GRAPH_METADATA")
    if folder and (Path(folder) / cloud_file).exists():
        return Path(folder) / cloud_file
    return BUNDLED_DIR / f"{cloud_file}.gz"


def schema(cloud_file: str = "v1.0-Prod.csdl") -> Schema:
    """The parsed schema (cached per process)."""
    with _lock:
        return _load(str(metadata_path(cloud_file)))


def compatible(csdl_type: str, value: object, sch: Schema | None = None) -> bool:
    """Whether a JSON ``value`` fits the CSDL type (null always fits; enums must be a member name)."""
    if value is None:
        return True
    sch = sch or schema()
    if csdl_type.startswith("Collection("):
        return isinstance(value, list) and all(compatible(csdl_type[11:-1], v, sch) for v in value)
    simple = {"Edm.String": str, "Edm.Boolean": bool, "Edm.Guid": str, "Edm.DateTimeOffset": str,
              "Edm.Date": str, "Edm.TimeOfDay": str, "Edm.Duration": str, "Edm.Binary": str, "Edm.Stream": str}
    if csdl_type in simple:
        return isinstance(value, simple[csdl_type])
    if csdl_type in ("Edm.Int32", "Edm.Int64", "Edm.Int16", "Edm.Byte"):
        return isinstance(value, int) and not isinstance(value, bool)
    if csdl_type in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if csdl_type in sch.enums:
        return isinstance(value, str) and all(v.strip() in sch.enums[csdl_type] for v in value.split(","))
    if csdl_type in sch.types:
        if not isinstance(value, dict):
            return False
        props = sch.properties(csdl_type)
        return all(k.startswith("@") or "@" in k or (k in props and compatible(props[k], v, sch))
                   for k, v in value.items())
    return True  # an Edm type we do not model
