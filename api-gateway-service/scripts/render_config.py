#!/usr/bin/env python3
"""Render the gateway's nginx templates the way the official nginx image's entrypoint does.

The image's ``/docker-entrypoint.d/20-envsubst-on-templates.sh`` runs ``envsubst`` on every
``*.template`` file under ``/etc/nginx/templates`` and writes the result, without the suffix and
keeping subdirectories, under ``/etc/nginx/conf.d``. Only ``${NAME}`` references to environment
variables that are set (and whose name matches ``NGINX_ENVSUBST_FILTER``) are replaced; everything
else, such as nginx's own ``$uri``, is left alone. This script does the same with the standard
library only, with two additions for local runs:

- every variable has a documented default (``DEFAULTS``), which the Dockerfile repeats as ``ENV``;
- a ``${NAME}`` left unreplaced, or a value that is not a single nginx token, is an error here
  instead of a broken configuration that nginx rejects later with a less helpful message.

Usage: ``python3 scripts/render_config.py --output DIR [--templates DIR]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "DEFAULTS",
    "DEFAULT_FILTER",
    "TEMPLATE_SUFFIX",
    "RenderError",
    "check_cors_origins",
    "check_settings",
    "effective_environment",
    "render_template_text",
    "render_templates",
]

TEMPLATE_SUFFIX = ".template"

# Local defaults. In a container GATEWAY_LISTEN is 0.0.0.0:8080 and GATEWAY_STATIC_DIR is where
# the image keeps its files (see the Dockerfile); Compose and Kubernetes set the upstream addresses.
DEFAULTS: dict[str, str] = {
    # Address (host:port, or a port) the gateway listens on.
    "GATEWAY_LISTEN": "127.0.0.1:8080",
    # host:port of each service; a name resolves when nginx starts. Locally (this script only, not
    # the image's envsubst) a comma-separated list: replicas side by side (FLEET_REPLICAS).
    "USER_SERVICE_UPSTREAM": "127.0.0.1:8001",
    "CATALOG_SERVICE_UPSTREAM": "127.0.0.1:8002",
    "ORDER_SERVICE_UPSTREAM": "127.0.0.1:8003",
    "CHAT_SERVICE_UPSTREAM": "127.0.0.1:8004",
    # Largest accepted request body (nginx size syntax); larger ones are answered 413.
    "GATEWAY_MAX_BODY_SIZE": "1m",
    # Per client address: every request. Generous enough for a developer or an end-to-end suite.
    "GATEWAY_RATE_LIMIT": "100r/s",
    "GATEWAY_RATE_BURST": "200",
    # Per client address: POST /api/auth/token (password guessing).
    "GATEWAY_AUTH_RATE_LIMIT": "1r/s",
    "GATEWAY_AUTH_RATE_BURST": "30",
    # Per client address: POST /api/orders.
    "GATEWAY_ORDER_RATE_LIMIT": "5r/s",
    "GATEWAY_ORDER_RATE_BURST": "50",
    # Address or CIDR block whose X-Forwarded-For is believed; "unix:" trusts no TCP peer.
    "GATEWAY_TRUSTED_PROXIES": "unix:",
    # Longest wait between two reads from an upstream; the chat route streams, so it waits longer.
    "GATEWAY_READ_TIMEOUT": "30s",
    "GATEWAY_CHAT_READ_TIMEOUT": "300s",
    # Directory of the files the gateway serves itself (openapi.json, docs/). Relative to nginx's
    # prefix: run_local.py lays it out in its workdir; the image sets /usr/share/nginx/gateway.
    "GATEWAY_STATIC_DIR": "static",
    # Comma-separated origins (scheme://host[:port]) whose pages may call the API from a browser
    # (CORS); empty: no CORS header is ever sent.
    "GATEWAY_CORS_ORIGINS": "",
}

# The names the gateway's templates use. The Dockerfile sets the same NGINX_ENVSUBST_FILTER so that
# no other variable of the container (Kubernetes injects many) can ever be substituted.
DEFAULT_FILTER = r"^(GATEWAY_|(USER|CATALOG|ORDER|CHAT)_SERVICE_UPSTREAM$)"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Environment-style names (upper case); nginx's own variables are lower case.
_ENV_STYLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# Every template variable is one nginx token: no whitespace, quotes, braces, ';' or '$'.
_SINGLE_TOKEN = re.compile(r"[^\s;{}'\"$#\\]+")
# A template line that makes one service address a server of an upstream group. Rendered here with
# a comma-separated list of addresses, it becomes one such line per address.
_SERVER_LINE = re.compile(
    r"^(?P<indent>[ \t]*)server \$\{(?P<name>[A-Z]+_SERVICE_UPSTREAM)\}(?P<rest>.*)$", re.MULTILINE
)
# Settings whose empty value means "off".
_MAY_BE_EMPTY = frozenset({"GATEWAY_CORS_ORIGINS"})


# An origin as a browser sends it (RFC 6454): scheme, lower-case host, and a port only when it is
# not the scheme's default. Nothing else: no path (not even "/"), no wildcard, no user info.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The rates nginx's limit_req_zone accepts, written without leading zeros (nginx.conf reads q, w
# and Retry-After from them).
_RATE = re.compile(r"[1-9][0-9]*r/[sm]")
_RATE_SETTINGS = ("GATEWAY_RATE_LIMIT", "GATEWAY_AUTH_RATE_LIMIT", "GATEWAY_ORDER_RATE_LIMIT")


class RenderError(Exception):
    """A template cannot be rendered into a valid configuration."""


def check_cors_origins(value: str) -> list[str]:
    """Return the origins of a ``GATEWAY_CORS_ORIGINS`` value; raise RenderError for a bad one.

    Each comma-separated item must be exactly an origin as a browser sends it in ``Origin``
    (``https://app.example.com``, ``http://127.0.0.1:5173``): the gateway compares them byte for
    byte, so anything else (a wildcard, a path, upper case, a default port) could never match.
    """
    if value == "":
        return []
    origins: list[str] = []
    for item in value.split(","):
        match = _ORIGIN.fullmatch(item)
        problem = ""
        if "*" in item:
            problem = "a wildcard, which is not allowed: list each origin"
        elif match is None:
            problem = "not an origin: scheme://host[:port] in lower case, without path or spaces"
        elif match["port"] is not None and (
            int(match["port"]) > 65535 or int(match["port"]) == _DEFAULT_PORTS[match["scheme"]]
        ):
            problem = (
                "not an origin: its port must be 1-65535, and not the scheme's default "
                "(browsers omit that)"
            )
        if problem:
            raise RenderError(f"GATEWAY_CORS_ORIGINS: {item!r} is {problem}")
        origins.append(item)
    return origins


def check_settings(variables: Mapping[str, str]) -> None:
    """Check the settings that are more than one nginx token; raise RenderError for a bad one."""
    check_cors_origins(variables.get("GATEWAY_CORS_ORIGINS", ""))
    for name in _RATE_SETTINGS:
        value = variables.get(name)
        if value is not None and _RATE.fullmatch(value) is None:
            raise RenderError(f"{name}={value!r} is not a rate such as 100r/s or 30r/m")


def effective_environment(
    environ: Mapping[str, str], *, filter_pattern: str | None = None
) -> dict[str, str]:
    """Return the variables templates may use: the defaults, overridden by ``environ``, filtered."""
    pattern = filter_pattern
    if pattern is None:
        pattern = environ.get("NGINX_ENVSUBST_FILTER", DEFAULT_FILTER)
    selector = re.compile(pattern)
    merged = {**DEFAULTS, **environ}
    return {name: value for name, value in merged.items() if selector.search(name)}


def render_template_text(
    text: str, variables: Mapping[str, str], *, source: str = "template"
) -> str:
    """Replace each ``${NAME}`` whose NAME is in ``variables``; leave every other ``$`` alone.

    A ``server ${<NAME>_SERVICE_UPSTREAM} ...;`` line whose value lists addresses separated by
    commas is repeated once per address.
    """

    def servers(match: re.Match[str]) -> str:
        name = match["name"]
        addresses = variables.get(name, "").split(",")
        if len(addresses) < 2:
            return match.group(0)
        for address in addresses:
            if _SINGLE_TOKEN.fullmatch(address) is None:
                raise RenderError(f"{source}: {name}: {address!r} is not a host:port")
        return "\n".join(
            f"{match['indent']}server {address}{match['rest']}" for address in addresses
        )

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            return match.group(0)
        value = variables[name]
        if name in _MAY_BE_EMPTY and value == "":
            return value
        if _SINGLE_TOKEN.fullmatch(value) is None:
            raise RenderError(f"{source}: {name}={value!r} is not a single nginx token")
        return value

    rendered = _REFERENCE.sub(substitute, _SERVER_LINE.sub(servers, text))
    unresolved = sorted(
        {name for name in _REFERENCE.findall(rendered) if _ENV_STYLE_NAME.fullmatch(name)}
    )
    if unresolved:
        raise RenderError(f"{source}: no value for {', '.join(unresolved)}")
    return rendered


def render_templates(
    template_dir: Path, output_dir: Path, environ: Mapping[str, str]
) -> list[Path]:
    """Render each ``*.template`` under ``template_dir`` into ``output_dir``; return the outputs."""
    variables = effective_environment(environ)
    check_settings(variables)
    templates = sorted(path for path in template_dir.rglob(f"*{TEMPLATE_SUFFIX}") if path.is_file())
    if not templates:
        raise RenderError(f"no *{TEMPLATE_SUFFIX} files under {template_dir}")
    outputs: list[Path] = []
    for template in templates:
        relative = template.relative_to(template_dir)
        target = output_dir / relative.parent / relative.name.removesuffix(TEMPLATE_SUFFIX)
        rendered = render_template_text(
            template.read_text(encoding="utf-8"), variables, source=str(relative)
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rendered, encoding="utf-8")
        outputs.append(target)
    return outputs


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--templates",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "config" / "templates",
        help="directory of *.template files (default: config/templates of this service)",
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="directory to write the rendered files to"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Render the templates from the command line; exit status 1 on a rendering error."""
    args = _parse_args(argv)
    try:
        outputs = render_templates(args.templates, args.output, os.environ)
    except RenderError as error:
        print(f"render_config: {error}", file=sys.stderr)
        return 1
    for output in outputs:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
