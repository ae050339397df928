"""A service's OpenAPI document as a committed snapshot, and its breaking changes.

Each service commits the OpenAPI 3.1 document its app generates as ``openapi.json`` at the root
of its repository, in the format :func:`openapi_json` writes (indented, sorted keys, like
``asyncapi.json``). Its unit test calls :func:`check_openapi_snapshot`: equal, it passes;
different, it fails listing every difference as ``BREAKING`` or ``additive``. ``make openapi``
writes the snapshot with :func:`update_openapi_snapshot`, which refuses a breaking change unless
``BREAKING=1`` is set. So a change of the public contract is always a change of ``openapi.json``
in the same commit, and a breaking one was written on purpose.

No maintained OpenAPI diff runs in a Python venv offline (oasdiff and openapi-changes are Go
binaries; the diff libraries on PyPI are young one-author projects that ignore ``anyOf``, which is
how OpenAPI 3.1 says ``nullable``), hence this small checker. It thinks like oasdiff: a change is
breaking when a client written against the old document can fail against the new one.

The rules (``old`` is the committed document, ``new`` the generated one). Schemas are followed
through local ``$ref`` (``components/schemas``, and parameters, bodies and responses filed under
``components``), into nested objects, array items, map values and the alternatives of
``anyOf``/``oneOf`` and ``type`` lists; ``allOf`` is merged. What a client sends (parameters and
request bodies) may only accept more; what it receives (response bodies and headers) may only
promise more.

BREAKING:

- a path removed (``/a/{id}`` and ``/a/{key}`` are the same path), an operation removed;
- a response status removed from an operation; a response's content type, body or header removed;
- in a response body: a property removed, a required property made optional, a type added (a
  value that may now be ``null``, an ``integer`` that may now be a ``number``), a type changed,
  an enum value added (strict clients, generated enums among them, fail on a value they do not
  know: the fleet counts that as breaking), an enum removed, a bound loosened (``maxLength``
  raised, ``minimum`` lowered, ...), a ``pattern`` or ``format`` removed or changed;
- in a request (body or parameter): a new required property or parameter, a property or
  parameter made required, a request body made required or added as required, a content type
  no longer accepted, a type removed or changed (``null`` no longer accepted, ``string`` to
  ``integer``), an enum value removed or an enum added, a bound tightened, a ``pattern`` or
  ``format`` added or changed, unknown properties refused (``additionalProperties: false``) or a
  property removed from a schema that refuses unknown ones;
- an ``operationId`` changed or removed (generated clients name their methods after it);
- security that an old caller no longer satisfies (a token now needed, another scheme or scope).

additive (compatible, listed so that the snapshot is updated with the code):

- new paths, operations, response statuses, content types and response headers;
- new optional request properties and parameters; a request property or parameter removed (the
  service ignores what it no longer reads, unless the schema refuses unknown properties);
  a request type widened (``null`` now accepted), an enum value added in a request, a bound
  loosened in a request;
- new response properties; a response type narrowed (``null`` no longer returned), an enum
  value removed from a response, a response bound tightened; a property made required;
- descriptions, summaries, titles, examples, defaults, tags, ``deprecated``, ``x-`` extensions,
  ``info`` (the service's version among them), component schemas added or removed (their uses
  are what is compared), and anything else outside these rules (listed by JSON pointer).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "Difference",
    "check_openapi_snapshot",
    "compare_openapi",
    "main",
    "offline_document",
    "openapi_json",
    "snapshot_report",
    "update_openapi_snapshot",
]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PATH_PARAMETER = re.compile(r"\{[^}/]*\}")
# Lower bounds (a larger value accepts less) and upper bounds (a smaller value accepts less).
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
# Keys whose values say something to a reader, never to the wire.
_DOCUMENTATION = frozenset(
    {"description", "summary", "title", "example", "examples", "default", "deprecated", "tags"}
    | {"externalDocs", "info", "contact", "license", "termsOfService"}
)
# Keys whose values are maps of names (a property named ``description`` is not a description).
_NAMED = frozenset(
    {"properties", "patternProperties", "paths", "schemas", "responses", "content", "headers"}
    | {"parameters", "requestBodies", "securitySchemes", "$defs", "definitions", "links"}
)
_MAX_REFERENCES = 64
_ABSENT: Any = object()


@dataclass(frozen=True)
class Difference:
    """One difference between two documents: where, what, and whether it breaks clients."""

    breaking: bool
    where: str
    what: str

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'additive'}: {self.where}: {self.what}"


def openapi_json(document: Mapping[str, Any]) -> str:
    """``document`` as ``openapi.json`` holds it (indented, sorted keys, a final newline)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def compare_openapi(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Difference]:
    """Every difference of ``new`` from ``old`` (see the module's rules); ``[]`` when equal."""
    if old == new:
        return []
    comparison = _Comparison(old, new)
    comparison.compare_paths()
    comparison.compare_component_names()
    differences = comparison.differences
    differences.extend(_documentation_changes(old, new, "", named=False))
    # The document's other parts (servers, webhooks, the OpenAPI version...): listed as they are.
    for key in sorted(set(old) | set(new)):
        if key in ("paths", "components") or key in _DOCUMENTATION or key.startswith("x-"):
            continue
        differences.extend(
            Difference(False, pointer, what)
            for pointer, what in _raw_changes(
                old.get(key, _ABSENT), new.get(key, _ABSENT), f"/{_escape(key)}"
            )
        )
    if not differences:
        differences.extend(
            Difference(False, pointer or "/", what) for pointer, what in _raw_changes(old, new, "")
        )
    return differences


def snapshot_report(name: str, differences: Sequence[Difference]) -> str:
    """What a test says of a snapshot ``name`` the app's document differs from."""
    lines = [f"{name} is not the OpenAPI document the app generates:"]
    lines += [f"  {difference}" for difference in differences]
    if any(difference.breaking for difference in differences):
        lines.append(
            "BREAKING changes of the public contract: a client written against the committed "
            f"{name} can fail against this service. Such a change needs a new major version of "
            "the API and a deprecation period (see the versioning policy): keep the old contract "
            "and add to it instead. Only once that is settled, `make openapi BREAKING=1` writes "
            "the snapshot."
        )
    elif differences:
        lines.append(f"Additive changes only: run `make openapi` and commit {name}.")
    else:
        lines.append(f"{name} is not in the format `make openapi` writes: run `make openapi`.")
    return "\n".join(lines)


def check_openapi_snapshot(document: Mapping[str, Any], snapshot: Path) -> None:
    """Fail the calling test unless ``snapshot`` holds ``document`` (``app.openapi()``).

    The failure lists each difference as BREAKING or additive and says what to do.
    """
    generated = openapi_json(document)
    if not snapshot.is_file():
        pytest.fail(f"{snapshot.name} is missing: run `make openapi` and commit it", pytrace=False)
    committed = snapshot.read_text(encoding="utf-8")
    if committed == generated:
        return
    try:
        old = json.loads(committed)
    except ValueError as error:
        pytest.fail(
            f"{snapshot.name} is not valid JSON ({error}): restore it from version control, "
            "then run `make openapi`",
            pytrace=False,
        )
    differences = compare_openapi(old, json.loads(generated))
    pytest.fail(snapshot_report(snapshot.name, differences), pytrace=False)


def update_openapi_snapshot(
    document: Mapping[str, Any], snapshot: Path, *, allow_breaking: bool | None = None
) -> int:
    """Write ``document`` to ``snapshot`` (``make openapi``); the exit status.

    A breaking change is written only with ``allow_breaking`` (by default: ``BREAKING=1`` in the
    environment); without it nothing is written, the reasons are printed and the status is 1.
    """
    if allow_breaking is None:
        allow_breaking = os.environ.get("BREAKING") == "1"
    generated = openapi_json(document)
    if snapshot.is_file():
        committed = snapshot.read_text(encoding="utf-8")
        if committed == generated:
            print(f"{snapshot.name} is up to date")
            return 0
        try:
            old = json.loads(committed)
        except ValueError as error:
            differences = [Difference(True, snapshot.name, f"not valid JSON ({error})")]
        else:
            differences = compare_openapi(old, json.loads(generated))
        for difference in differences:
            print(f"  {difference}")
        if any(difference.breaking for difference in differences):
            if not allow_breaking:
                print(
                    f"refusing to write {snapshot.name}: the changes marked BREAKING break the "
                    "public contract (a client written against the committed document can fail). "
                    "Such a change needs a new major version of the API and a deprecation period "
                    "(see the versioning policy); keep the old contract and add to it instead. "
                    "Once that is settled, `make openapi BREAKING=1` writes it."
                )
                return 1
            print(f"BREAKING=1: writing {snapshot.name} with breaking changes")
    temporary = snapshot.with_name(snapshot.name + ".tmp")
    temporary.write_text(generated, encoding="utf-8")
    temporary.replace(snapshot)
    print(f"wrote {snapshot.name}")
    return 0


def offline_document(
    app: str = "app.main:create_app", settings: str = "app.config:Settings"
) -> dict[str, Any]:
    """The OpenAPI document of a service's app built offline: ``app`` (``module:factory``)
    called with ``settings`` (``module:class``, a pydantic settings class) validated from
    ``{"log_json": false}``, its defaults otherwise (no environment read, nothing opened)."""
    factory = _imported(app)
    settings_class = _imported(settings)
    document: dict[str, Any] = factory(settings_class.model_validate({"log_json": False})).openapi()
    return document


def _imported(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m common_libs.testing.openapi_snapshot``: a service's ``make openapi``.

    Writes :func:`offline_document` to ``--output`` (``openapi.json``) with
    :func:`update_openapi_snapshot`; ``--app`` and ``--settings`` default to the fleet's layout
    (``app.main:create_app``, ``app.config:Settings``), run from the service's repository root.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--app", default="app.main:create_app")
    parser.add_argument("--settings", default="app.config:Settings")
    parser.add_argument("--output", type=Path, default=Path("openapi.json"))
    arguments = parser.parse_args(argv)
    return update_openapi_snapshot(
        offline_document(arguments.app, arguments.settings), arguments.output
    )


# --- the comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    """One alternative of a schema (of ``anyOf``, ``oneOf`` or a ``type`` list), resolved."""

    kind: str  # a JSON type, or "any"
    schema: Mapping[str, Any]
    ref: str | None


@dataclass
class _Context:
    """Where a schema is compared: the operation's part, the path inside the body, the direction
    (``request``: the new schema must accept at least what the old one did; response: it may
    promise no less and produce nothing the old one did not), the references being followed."""

    where: str
    at: str
    request: bool
    seen: frozenset[tuple[str | None, str | None]] = field(default_factory=frozenset)

    def inside(self, step: str) -> _Context:
        at = f"{self.at}{step}" if step.startswith("[") or not self.at else f"{self.at}.{step}"
        return _Context(self.where, at, self.request, self.seen)

    def what(self, text: str) -> str:
        return f"{self.at}: {text}" if self.at else text


class _Comparison:
    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old = old
        self.new = new
        self.differences: list[Difference] = []

    def add(self, breaking: bool, where: str, what: str) -> None:
        self.differences.append(Difference(breaking, where, what))

    # paths and operations

    def compare_paths(self) -> None:
        old_paths = {_template(path): path for path in self.old.get("paths", {})}
        new_paths = {_template(path): path for path in self.new.get("paths", {})}
        for template, old_path in old_paths.items():
            new_path = new_paths.get(template)
            if new_path is None:
                self.add(True, old_path, "path removed")
                continue
            if new_path != old_path:
                self.add(False, old_path, f"path parameters renamed: {new_path}")
            renamed = dict(zip(_path_parameters(old_path), _path_parameters(new_path), strict=True))
            self.compare_path_item(old_path, new_path, renamed)
        for template, new_path in new_paths.items():
            if template not in old_paths:
                self.add(False, new_path, "new path")

    def compare_path_item(self, old_path: str, new_path: str, renamed: dict[str, str]) -> None:
        old_item = _resolve(self.old, self.old["paths"][old_path])
        new_item = _resolve(self.new, self.new["paths"][new_path])
        for method in _METHODS:
            where = f"{method.upper()} {old_path}"
            if method in old_item and method not in new_item:
                self.add(True, where, "operation removed")
            elif method in new_item and method not in old_item:
                self.add(False, f"{method.upper()} {new_path}", "new operation")
            elif method in old_item:
                self.compare_operation(
                    where,
                    _resolve(self.old, old_item[method]),
                    _resolve(self.new, new_item[method]),
                    old_shared=old_item.get("parameters", []),
                    new_shared=new_item.get("parameters", []),
                    renamed=renamed,
                )

    def compare_operation(
        self,
        where: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        *,
        old_shared: Sequence[Any],
        new_shared: Sequence[Any],
        renamed: dict[str, str],
    ) -> None:
        old_id, new_id = old.get("operationId"), new.get("operationId")
        if old_id is not None and old_id != new_id:
            self.add(True, where, f"operationId {_show(old_id)} -> {_show(new_id)}")
        elif new_id != old_id:
            self.add(False, where, f"new operationId {_show(new_id)}")
        self.compare_security(where, old, new)
        self.compare_parameters(
            where,
            _parameters(self.old, old_shared, old.get("parameters", []), renamed),
            _parameters(self.new, new_shared, new.get("parameters", []), {}),
        )
        self.compare_request_body(where, old.get("requestBody"), new.get("requestBody"))
        self.compare_responses(where, old.get("responses", {}), new.get("responses", {}))

    def compare_security(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        old_options = _security(self.old, old)
        new_options = _security(self.new, new)
        if old_options == new_options:
            return
        refused = [
            option
            for option in old_options
            if not any(_satisfied_by(option, other) for other in new_options)
        ]
        for option in refused:
            self.add(
                True,
                where,
                f"security: a caller with {_show_security(option)} is refused now "
                f"(needs {' or '.join(_show_security(other) for other in new_options)})",
            )
        if not refused:
            self.add(
                False,
                where,
                f"security: needs {' or '.join(_show_security(other) for other in new_options)}",
            )

    def compare_parameters(
        self,
        where: str,
        old: Mapping[tuple[str, str], Mapping[str, Any]],
        new: Mapping[tuple[str, str], Mapping[str, Any]],
    ) -> None:
        for key, old_parameter in old.items():
            place = f"{where} {key[0]} parameter {_show(key[1])}"
            new_parameter = new.get(key)
            if new_parameter is None:
                self.add(False, place, "removed (ignored when sent)")
                continue
            old_required = bool(old_parameter.get("required"))
            new_required = bool(new_parameter.get("required"))
            if new_required and not old_required:
                self.add(True, place, "became required")
            elif old_required and not new_required:
                self.add(False, place, "became optional")
            self.compare_schema(
                old_parameter.get("schema", {}),
                new_parameter.get("schema", {}),
                _Context(place, "", request=True),
            )
        for key, new_parameter in new.items():
            if key not in old:
                place = f"{where} {key[0]} parameter {_show(key[1])}"
                if new_parameter.get("required"):
                    self.add(True, place, "new required parameter")
                else:
                    self.add(False, place, "new optional parameter")

    def compare_request_body(self, where: str, old: Any, new: Any) -> None:
        place = f"{where} request body"
        if old is None and new is None:
            return
        new_body = _resolve(self.new, new) if new is not None else None
        if old is None:
            assert new_body is not None
            if new_body.get("required"):
                self.add(True, place, "new required request body")
            else:
                self.add(False, place, "new optional request body")
            return
        old_body = _resolve(self.old, old)
        if new_body is None:
            self.add(False, place, "removed (ignored when sent)")
            return
        if new_body.get("required") and not old_body.get("required"):
            self.add(True, place, "became required")
        elif old_body.get("required") and not new_body.get("required"):
            self.add(False, place, "became optional")
        old_content = old_body.get("content", {})
        new_content = new_body.get("content", {})
        for media_type, old_media in old_content.items():
            if media_type not in new_content:
                self.add(True, place, f"content type {media_type} no longer accepted")
                continue
            self.compare_schema(
                old_media.get("schema", {}),
                new_content[media_type].get("schema", {}),
                _Context(f"{place} {media_type}", "body", request=True),
            )
        for media_type in new_content:
            if media_type not in old_content:
                self.add(False, place, f"content type {media_type} now accepted")

    def compare_responses(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for status, old_response in old.items():
            place = f"{where} response {status}"
            if status not in new:
                self.add(True, place, "removed")
                continue
            old_response = _resolve(self.old, old_response)
            new_response = _resolve(self.new, new[status])
            old_content = old_response.get("content", {})
            new_content = new_response.get("content", {})
            for media_type, old_media in old_content.items():
                if media_type not in new_content:
                    self.add(True, place, f"content type {media_type} removed")
                    continue
                self.compare_schema(
                    old_media.get("schema", {}),
                    new_content[media_type].get("schema", {}),
                    _Context(f"{place} {media_type}", "body", request=False),
                )
            for media_type in new_content:
                if media_type not in old_content:
                    self.add(False, place, f"new content type {media_type}")
            old_headers = old_response.get("headers", {})
            new_headers = new_response.get("headers", {})
            for name, old_header in old_headers.items():
                if name not in new_headers:
                    self.add(True, place, f"header {name} removed")
                    continue
                self.compare_schema(
                    _resolve(self.old, old_header).get("schema", {}),
                    _resolve(self.new, new_headers[name]).get("schema", {}),
                    _Context(f"{place} header {name}", "", request=False),
                )
            for name in new_headers:
                if name not in old_headers:
                    self.add(False, place, f"new header {name}")
        for status in new:
            if status not in old:
                self.add(False, f"{where} response {status}", "new response")

    # schemas

    def compare_schema(self, old: Any, new: Any, context: _Context) -> None:
        old_variants = _variants(self.old, old)
        new_variants = _variants(self.new, new)
        old_kinds = [variant.kind for variant in old_variants]
        new_kinds = [variant.kind for variant in new_variants]
        if context.request:
            # Every value the old schema accepted is still accepted.
            for variant in old_variants:
                candidates = [other for other in new_variants if _covers(other.kind, variant.kind)]
                if not candidates:
                    self.add(
                        True,
                        context.where,
                        context.what(
                            f"{_show_kind(variant.kind)} no longer accepted "
                            f"(now {_show_kinds(new_kinds)})"
                        ),
                    )
                    continue
                self.compare_best(variant, candidates, context, old_first=True)
            for kind in _unique(new_kinds):
                if kind not in old_kinds:
                    self.add(False, context.where, context.what(f"{_show_kind(kind)} now accepted"))
        else:
            # Every value the new schema produces is one the old schema promised.
            for variant in new_variants:
                candidates = [other for other in old_variants if _covers(other.kind, variant.kind)]
                if not candidates:
                    self.add(
                        True,
                        context.where,
                        context.what(
                            f"may now be {_show_kind(variant.kind)} (was {_show_kinds(old_kinds)})"
                        ),
                    )
                    continue
                self.compare_best(variant, candidates, context, old_first=False)
            for kind in _unique(old_kinds):
                if kind not in new_kinds:
                    self.add(False, context.where, context.what(f"no longer {_show_kind(kind)}"))

    def compare_best(
        self,
        variant: _Variant,
        candidates: list[_Variant],
        context: _Context,
        *,
        old_first: bool,
    ) -> None:
        """Compare ``variant`` with the candidate that matches it best: the same component,
        else the one whose comparison breaks least."""
        same = [other for other in candidates if variant.ref and other.ref == variant.ref]
        if same or len(candidates) == 1:
            candidates = same[:1] or candidates
        outcomes: list[list[Difference]] = []
        for other in candidates:
            old, new = (variant, other) if old_first else (other, variant)
            saved, self.differences = self.differences, []
            self.compare_variants(old, new, context)
            outcomes.append(self.differences)
            self.differences = saved
        best = min(outcomes, key=lambda found: sum(d.breaking for d in found))
        self.differences.extend(best)

    def compare_variants(self, old: _Variant, new: _Variant, context: _Context) -> None:
        pair = (old.ref, new.ref)
        if pair != (None, None):
            if pair in context.seen:
                return
            context = _Context(context.where, context.at, context.request, context.seen | {pair})
        self.compare_enums(old.schema, new.schema, context)
        self.compare_bounds(old.schema, new.schema, context)
        self.compare_properties(old.schema, new.schema, context)
        if "items" in old.schema or "items" in new.schema:
            self.compare_schema(
                old.schema.get("items", {}), new.schema.get("items", {}), context.inside("[]")
            )
        old_extra = old.schema.get("additionalProperties")
        new_extra = new.schema.get("additionalProperties")
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self.compare_schema(old_extra, new_extra, context.inside("*"))
        elif old_extra != new_extra:
            refused = context.request and new_extra is False
            self.add(
                refused,
                context.where,
                context.what(
                    "unknown properties now refused"
                    if refused
                    else f"additionalProperties {_show(old_extra)} -> {_show(new_extra)}"
                ),
            )

    def compare_enums(
        self, old: Mapping[str, Any], new: Mapping[str, Any], context: _Context
    ) -> None:
        old_values, new_values = _enum(old), _enum(new)
        if old_values == new_values:
            return
        where = context.where
        if old_values is None:
            assert new_values is not None
            self.add(
                context.request,
                where,
                context.what(f"now limited to {_show_values(new_values)}"),
            )
            return
        if new_values is None:
            self.add(
                not context.request,
                where,
                context.what(f"no longer limited to {_show_values(old_values)}"),
            )
            return
        for value in old_values:
            if value not in new_values:
                text = "no longer accepted" if context.request else "no longer returned"
                self.add(context.request, where, context.what(f"value {_show(value)} {text}"))
        for value in new_values:
            if value not in old_values:
                text = "now accepted" if context.request else "may now be returned (new enum value)"
                self.add(not context.request, where, context.what(f"value {_show(value)} {text}"))

    def compare_bounds(
        self, old: Mapping[str, Any], new: Mapping[str, Any], context: _Context
    ) -> None:
        for key in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
            old_bound, new_bound = _bound(old, key), _bound(new, key)
            if old_bound == new_bound:
                continue
            lower = key in _LOWER_BOUNDS
            if old_bound is None or new_bound is None:
                tighter = old_bound is None
            else:
                tighter = new_bound > old_bound if lower else new_bound < old_bound
            self.add(
                tighter if context.request else not tighter,
                context.where,
                context.what(f"{key} {_show(old_bound)} -> {_show(new_bound)}"),
            )
        for key in ("pattern", "format"):
            old_value, new_value = old.get(key), new.get(key)
            if old_value == new_value:
                continue
            breaking = new_value is not None if context.request else old_value is not None
            self.add(
                breaking,
                context.where,
                context.what(f"{key} {_show(old_value)} -> {_show(new_value)}"),
            )

    def compare_properties(
        self, old: Mapping[str, Any], new: Mapping[str, Any], context: _Context
    ) -> None:
        old_properties = old.get("properties", {})
        new_properties = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        where = context.where
        for name, old_property in old_properties.items():
            inner = context.inside(name)
            if name not in new_properties:
                if not context.request:
                    self.add(True, where, inner.what("property removed"))
                elif new.get("additionalProperties") is False:
                    self.add(True, where, inner.what("property removed (now refused when sent)"))
                else:
                    self.add(False, where, inner.what("property removed (ignored when sent)"))
                continue
            if name in new_required and name not in old_required:
                self.add(
                    context.request,
                    where,
                    inner.what("became required" if context.request else "now always present"),
                )
            elif name in old_required and name not in new_required:
                self.add(
                    not context.request,
                    where,
                    inner.what(
                        "became optional" if context.request else "no longer always present"
                    ),
                )
            self.compare_schema(old_property, new_properties[name], inner)
        for name in new_properties:
            if name not in old_properties:
                inner = context.inside(name)
                if context.request and name in new_required:
                    self.add(True, where, inner.what("new required property"))
                elif context.request:
                    self.add(False, where, inner.what("new optional property"))
                else:
                    self.add(False, where, inner.what("new property"))

    def compare_component_names(self) -> None:
        old_schemas = self.old.get("components", {}).get("schemas", {})
        new_schemas = self.new.get("components", {}).get("schemas", {})
        for name in old_schemas:
            if name not in new_schemas:
                self.add(False, "components", f"schema {name} removed (its uses are compared)")
        for name in new_schemas:
            if name not in old_schemas:
                self.add(False, "components", f"new schema {name}")


# --- helpers -------------------------------------------------------------------------------------


def _template(path: str) -> str:
    return _PATH_PARAMETER.sub("{}", path)


def _path_parameters(path: str) -> list[str]:
    return [match[1:-1] for match in _PATH_PARAMETER.findall(path)]


def _resolve(document: Mapping[str, Any], node: Any) -> Mapping[str, Any]:
    """``node`` with its local ``$ref`` followed (its own keys win over the target's)."""
    return _resolve_named(document, node)[0]


def _resolve_named(document: Mapping[str, Any], node: Any) -> tuple[Mapping[str, Any], str | None]:
    """``node`` resolved, and the name of the first component it referred to."""
    name: str | None = None
    for _ in range(_MAX_REFERENCES):
        if not isinstance(node, Mapping) or "$ref" not in node:
            return (node if isinstance(node, Mapping) else {}), name
        reference = node["$ref"]
        if not isinstance(reference, str) or not reference.startswith("#/"):
            raise ValueError(f"only local references are compared, not {reference!r}")
        target: Any = document
        for part in reference[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or key not in target:
                raise ValueError(f"unresolvable reference {reference!r}")
            target = target[key]
        name = name or reference
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        node = {**target, **siblings} if isinstance(target, Mapping) else target
    raise ValueError(f"more than {_MAX_REFERENCES} references in a row")


def _variants(document: Mapping[str, Any], schema: Any) -> list[_Variant]:
    """The alternatives a schema allows, each of one type ("any" when it names none)."""
    resolved, ref = _resolve_named(document, schema)
    if "allOf" in resolved:
        resolved = _merge_all_of(document, resolved)
    for union in ("anyOf", "oneOf"):
        if union in resolved:
            return [
                variant
                for alternative in resolved[union]
                for variant in _variants(document, alternative)
            ]
    kind = resolved.get("type")
    variants: list[_Variant]
    if isinstance(kind, list):
        variants = [_Variant(str(each), {**resolved, "type": each}, ref) for each in kind]
    else:
        variants = [_Variant(str(kind) if kind else _implied_kind(resolved), resolved, ref)]
    if resolved.get("nullable") is True and "null" not in {each.kind for each in variants}:
        variants.append(_Variant("null", {"type": "null"}, None))
    return variants


def _implied_kind(schema: Mapping[str, Any]) -> str:
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "any"


def _merge_all_of(document: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema["allOf"]:
        resolved = _resolve(document, part)
        if "allOf" in resolved:
            resolved = _merge_all_of(document, resolved)
        for key, value in resolved.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _covers(wider: str, kind: str) -> bool:
    """Whether a value of type ``kind`` is one of type ``wider``."""
    return wider in (kind, "any") or (wider == "number" and kind == "integer")


def _enum(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _bound(schema: Mapping[str, Any], key: str) -> float | None:
    value = schema.get(key)
    # OpenAPI 3.0's boolean exclusiveMinimum/exclusiveMaximum are not bounds of their own.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _parameters(
    document: Mapping[str, Any],
    shared: Sequence[Any],
    own: Sequence[Any],
    renamed: Mapping[str, str],
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """An operation's parameters by (location, name); its own replace the path item's."""
    parameters: dict[tuple[str, str], Mapping[str, Any]] = {}
    for parameter in (*shared, *own):
        resolved = _resolve(document, parameter)
        location, name = str(resolved.get("in")), str(resolved.get("name"))
        if location == "path":
            name = renamed.get(name, name)
        parameters[(location, name)] = resolved
    return parameters


def _security(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = operation.get("security", document.get("security", []))
    return [dict(option) for option in options] or [{}]


def _satisfied_by(held: Mapping[str, Any], needed: Mapping[str, Any]) -> bool:
    """Whether a caller that satisfies ``held`` also satisfies ``needed``."""
    return all(
        scheme in held and set(scopes) <= set(held[scheme]) for scheme, scopes in needed.items()
    )


def _show_security(option: Mapping[str, Any]) -> str:
    if not option:
        return "no credentials"
    return " and ".join(
        f"{scheme} {sorted(scopes)}" if scopes else scheme for scheme, scopes in option.items()
    )


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _show_values(values: Sequence[Any]) -> str:
    return ", ".join(_show(value) for value in values)


def _show_kind(kind: str) -> str:
    return "any value" if kind == "any" else kind


def _show_kinds(kinds: Sequence[str]) -> str:
    return " or ".join(_show_kind(kind) for kind in _unique(kinds))


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _documentation_changes(old: Any, new: Any, pointer: str, *, named: bool) -> list[Difference]:
    """Changes of the documentation keys (descriptions, examples, info, ``x-``...) where both
    documents have the same object; ``named``: the keys of this object are names, not
    keywords."""
    changes: list[Difference] = []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            inner = f"{pointer}/{_escape(key)}"
            if not named and (key in _DOCUMENTATION or key.startswith("x-")):
                changes.extend(
                    Difference(False, where, what)
                    for where, what in _raw_changes(
                        old.get(key, _ABSENT), new.get(key, _ABSENT), inner
                    )
                )
            elif key in old and key in new:
                changes.extend(
                    _documentation_changes(
                        old[key], new[key], inner, named=not named and key in _NAMED
                    )
                )
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (old_item, new_item) in enumerate(zip(old, new, strict=True)):
            changes.extend(
                _documentation_changes(old_item, new_item, f"{pointer}/{index}", named=False)
            )
    return changes


def _raw_changes(old: Any, new: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Each place where ``old`` and ``new`` differ, as a JSON pointer and what changed."""
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            yield from _raw_changes(
                old.get(key, _ABSENT), new.get(key, _ABSENT), f"{pointer}/{_escape(key)}"
            )
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (old_item, new_item) in enumerate(zip(old, new, strict=True)):
            yield from _raw_changes(old_item, new_item, f"{pointer}/{index}")
    elif old is _ABSENT:
        yield pointer, f"added {_show(new)}"
    elif new is _ABSENT:
        yield pointer, "removed"
    else:
        yield pointer, f"{_show(old)} -> {_show(new)}"


if __name__ == "__main__":  # pragma: no cover - ``make openapi``
    raise SystemExit(main())
