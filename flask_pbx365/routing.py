"""Route tables: a module's routes written with decorators, added to a blueprint later by whoever mounts them.

A :class:`Routes` records ``(rule, endpoint, view, options)`` and does nothing else, so importing a module that
declares routes registers nothing anywhere; :meth:`Routes.add_to` puts them on a blueprint (one per app, built by
the extension), keeping the endpoint names (the view functions' names) that templates pass to ``url_for``.
"""
from __future__ import annotations

from typing import Any, Callable

View = Callable[..., Any]


class Routes:
    """A list of routes to add to a blueprint: ``routes = Routes()``, then ``@routes.route("/path")``."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str, View, dict[str, Any]]] = []

    def route(self, rule: str, **options: Any) -> Callable[[View], View]:
        """Record ``view`` for ``rule``; ``options`` as for :meth:`flask.Blueprint.route` (``endpoint``, ``methods``)."""
        def record(view: View) -> View:
            endpoint = options.pop("endpoint", None) or view.__name__
            self.rules.append((rule, endpoint, view, options))
            return view
        return record

    def get(self, rule: str, **options: Any) -> Callable[[View], View]:
        return self.route(rule, methods=["GET"], **options)

    def post(self, rule: str, **options: Any) -> Callable[[View], View]:
        return self.route(rule, methods=["POST"], **options)

    def add_to(self, blueprint: Any) -> None:
        """Add every recorded route to ``blueprint`` (a fresh one per app)."""
        for rule, endpoint, view, options in self.rules:
            blueprint.add_url_rule(rule, endpoint, view, **options)
