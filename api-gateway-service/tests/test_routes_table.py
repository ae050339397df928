"""config/routes.json, the routing table, is exactly what the nginx configuration implements.

scripts/build_openapi.py publishes the paths of this table; the template routes them. Each prefix
is an exact location plus the prefix with its trailing slash, proxied to the same path of its
service's upstream group; POST and PATCH to the same prefixes are rewritten to one internal location
per group, proxied to the group's twin without keep-alive; redirects of a service are rewritten for
the same prefixes.
"""

from __future__ import annotations

import re

import build_openapi
from support.servers import SERVICE_DIR

CONFIG_DIR = SERVICE_DIR / "config"
GATEWAY_TEMPLATE = CONFIG_DIR / "templates" / "gateway.conf.template"
UPSTREAMS_TEMPLATE = CONFIG_DIR / "templates" / "upstreams.conf.template"
MAIN_CONFIG = CONFIG_DIR / "nginx.conf"

_LOCATION = re.compile(r"^\s*location\s+(?:(=)\s+)?(\S+)\s*\{", re.M)
_PROXY_PASS = re.compile(r"^\s*proxy_pass\s+http://([A-Za-z0-9_]+)(\S*);", re.M)


def _locations(text: str) -> list[tuple[bool, str, str]]:
    """(exact?, path, body) of every location block, nested braces included in its body."""
    found = []
    for match in _LOCATION.finditer(text):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        found.append((match.group(1) == "=", match.group(2), text[match.end() : index - 1]))
    return found


def _proxied_locations() -> set[tuple[bool, str, str, str]]:
    """(exact?, client path, upstream group, upstream path) of every proxying location."""
    proxied = set()
    for exact, path, body in _locations(GATEWAY_TEMPLATE.read_text(encoding="utf-8")):
        passes = _PROXY_PASS.findall(body)
        assert len(passes) <= 1, path
        if passes:
            upstream, uri = passes[0]
            proxied.add((exact, path, upstream, uri))
    return proxied


def test_the_template_proxies_exactly_the_tables_prefixes() -> None:
    expected = set()
    for row in build_openapi.load_routes():
        for prefix in row.prefixes:
            expected.add((True, f"/api/{prefix}", row.upstream, f"/{prefix}"))
            expected.add((False, f"/api/{prefix}/", row.upstream, f"/{prefix}/"))
        fresh = (False, f"/_gateway/fresh/{row.upstream}/api/", f"{row.upstream}_fresh", "/")
        expected.add(fresh)

    assert _proxied_locations() == expected


def test_post_and_patch_are_rewritten_for_exactly_the_tables_prefixes() -> None:
    rows = re.findall(
        r'^\s*"~\^\(POST\|PATCH\):/api/\(([^)]*)\)\(/\|\\z\)"\s+(\S+);',
        MAIN_CONFIG.read_text(encoding="utf-8"),
        re.M,
    )

    assert {upstream: set(prefixes.split("|")) for prefixes, upstream in rows} == {
        row.upstream: set(row.prefixes) for row in build_openapi.load_routes()
    }
    assert len(rows) == len(build_openapi.load_routes())


def test_every_upstream_group_of_the_table_is_defined_and_no_other() -> None:
    defined = set(
        re.findall(r"^upstream\s+(\S+)\s*\{", UPSTREAMS_TEMPLATE.read_text(encoding="utf-8"), re.M)
    )

    groups = {row.upstream for row in build_openapi.load_routes()}
    assert defined == groups | {f"{group}_fresh" for group in groups}


def test_redirects_are_rewritten_for_exactly_the_tables_prefixes() -> None:
    rewrite = re.search(
        r'^\s*proxy_redirect\s+"~\^/\(([^)]*)\)', MAIN_CONFIG.read_text(encoding="utf-8"), re.M
    )
    assert rewrite is not None

    routed = {prefix for row in build_openapi.load_routes() for prefix in row.prefixes}
    assert set(rewrite.group(1).split("|")) == routed


def test_no_prefix_is_routed_twice_and_each_service_has_a_tag() -> None:
    routes = build_openapi.load_routes()
    prefixes = [prefix for row in routes for prefix in row.prefixes]

    assert len(prefixes) == len(set(prefixes))
    assert len({row.service for row in routes}) == len(routes)
    assert all(row.tag and row.description for row in routes)
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]*", prefix) for prefix in prefixes)


def test_a_prefix_routes_itself_and_what_is_below_it_only() -> None:
    row = build_openapi.ServiceRoutes(
        service="svc", upstream="svc_up", prefixes=("products",), tag="T", description="D."
    )

    assert row.routes("/products")
    assert row.routes("/products/{product_id}")
    assert not row.routes("/productsX")
    assert not row.routes("/products-admin")
    assert not row.routes("/inventory/products")
    assert not row.routes("/")
