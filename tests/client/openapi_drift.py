"""Compares the client's pydantic models with the server's OpenAPI document, in JSON Schema terms.

Responses: every value the server's schema allows must be readable by the client's model (the client
may be more lenient: a float where the server sends integers, a nullable field the server always
fills). Requests: every value the client's model can produce must be accepted by the server, with the
same required fields and the same defaults. Enums must have exactly the same values either way.
Nested models are followed through ``$ref``s, each client model standing for the server schemas
``PAIRS`` names; a server field the client does not model must be listed in ``SERVER_ONLY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Side:
    client: bool
    defs: dict[str, Any]

    def ref(self, schema: dict[str, Any]) -> str | None:
        ref = schema.get("$ref")
        return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


@dataclass
class DriftCheck:
    server_schemas: dict[str, Any]
    pairs: dict[str, set[str]]  # client model name → the server schemas it stands for
    server_only: dict[str, dict[str, str]]  # server schema → {field the client leaves out: why}
    problems: list[str] = field(default_factory=list)
    _queue: list[tuple[str, dict[str, Any], dict[str, Any], str, bool]] = field(default_factory=list)
    _done: set[tuple[str, str, bool]] = field(default_factory=set)

    def check(self, model: type[BaseModel], server_name: str, *, request: bool) -> None:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs = schema.pop("$defs", {})
        self._queue.append((model.__name__, schema, defs, server_name, request))
        while self._queue:
            client_name, client_schema, client_defs, name, is_request = self._queue.pop()
            if (client_name, name, is_request) not in self._done:
                self._done.add((client_name, name, is_request))
                self._compare(client_name, client_schema, client_defs, name, is_request)

    @property
    def compared(self) -> set[str]:
        """The client models compared so far (nested ones included)."""
        return {client for client, _, _ in self._done}

    def _compare(
        self, where: str, client: dict[str, Any], defs: dict[str, Any], server_name: str, request: bool
    ) -> None:
        server = self.server_schemas.get(server_name)
        if server is None:
            self.problems.append(f"{where}: the server has no schema {server_name}")
            return
        if "enum" in client or "enum" in server:
            if set(client.get("enum", [])) != set(server.get("enum", [])):
                ours, theirs = client.get("enum"), server.get("enum")
                self.problems.append(f"{where} ~ {server_name}: enum {ours} ≠ {theirs}")
            return
        client_side, server_side = Side(True, defs), Side(False, self.server_schemas)
        props, server_props = client.get("properties", {}), server.get("properties", {})
        required, server_required = set(client.get("required", [])), set(server.get("required", []))
        for name, prop in props.items():
            spot = f"{where}.{name} ~ {server_name}.{name}"
            if name not in server_props:
                self.problems.append(f"{spot}: not in the server's schema")
                continue
            theirs = server_props[name]
            if request:
                fits = self._accepts(theirs, server_side, prop, client_side)
                if (name in required) != (name in server_required):
                    self.problems.append(f"{spot}: required on one side only")
                if "default" in theirs and prop.get("default") != theirs["default"]:
                    self.problems.append(f"{spot}: default {prop.get('default')!r} ≠ {theirs['default']!r}")
            else:
                fits = self._accepts(prop, client_side, theirs, server_side)
                if name in required and name not in server_required:
                    self.problems.append(f"{spot}: the client requires what the server may leave out")
            if not fits:
                self.problems.append(f"{spot}: client {prop} does not fit server {theirs}")
        left_out = set(server_props) - set(props)
        allowed = set(self.server_only.get(server_name, {}))
        for name in sorted(left_out - allowed):
            self.problems.append(f"{server_name}.{name}: a server field the client does not model")
        for name in sorted(allowed - left_out):
            self.problems.append(f"{server_name}.{name}: allowlisted but modelled or gone")

    def _accepts(self, wide: dict[str, Any], ws: Side, narrow: dict[str, Any], ns: Side) -> bool:
        """Does ``wide`` accept every value ``narrow`` allows?"""
        wref, nref = ws.ref(wide), ns.ref(narrow)
        if wref and nref:
            return self._linked(wref if ws.client else nref, nref if ws.client else wref, ws, ns)
        if "anyOf" in narrow:
            return all(self._accepts(wide, ws, option, ns) for option in narrow["anyOf"])
        if "anyOf" in wide:
            return any(self._accepts(option, ws, narrow, ns) for option in wide["anyOf"])
        if wref:
            return self._accepts(ws.defs[wref], ws, narrow, ns)
        if nref:
            return self._accepts(wide, ws, ns.defs[nref], ns)
        if "type" not in wide and "enum" not in wide:
            return True  # any value
        if "enum" in wide and set(wide["enum"]) != set(narrow.get("enum", [])):
            return False
        kind, narrow_kind = wide.get("type"), narrow.get("type")
        if kind != narrow_kind and not (kind == "number" and narrow_kind == "integer"):
            return False
        if wide.get("format") not in (None, narrow.get("format")):
            return False
        if kind == "array":
            return self._accepts(wide.get("items", {}), ws, narrow.get("items", {}), ns)
        if kind == "object":
            return self._accepts(values_of(wide), ws, values_of(narrow), ns)
        return True

    def _linked(self, client_name: str, server_name: str, ws: Side, ns: Side) -> bool:
        client_side = ws if ws.client else ns
        if server_name not in self.pairs.get(client_name, set()):
            self.problems.append(f"client model {client_name} is not paired with server schema {server_name}")
            return True  # reported once, here
        request = not ws.client  # the server side is the wide one when the client sends
        schema = client_side.defs[client_name]
        self._queue.append((client_name, schema, client_side.defs, server_name, request))
        return True


def values_of(schema: dict[str, Any]) -> dict[str, Any]:
    """An object's value schema: ``additionalProperties`` absent or true is any value."""
    values = schema.get("additionalProperties", True)
    return {} if values is True else values
