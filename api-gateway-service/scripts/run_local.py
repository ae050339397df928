#!/usr/bin/env python3
"""Run the gateway locally: render the configuration into a work directory, then become nginx.

``python3 scripts/run_local.py --workdir DIR`` writes ``DIR/nginx.conf`` and ``DIR/conf.d/*.conf``
(the templates rendered from the environment, see render_config.py) and replaces itself with nginx
in the foreground (``daemon off``), with DIR as its prefix: the pid file and every temp directory
live in DIR, the error log goes to stderr and the JSON access log to stdout. The process a manager
started *is* the nginx master, so SIGTERM or SIGINT stops it (fast shutdown), SIGQUIT drains it
gracefully and SIGHUP reloads the configuration already rendered into DIR.

The files the gateway serves itself (``GET /api/openapi.json``, the ``/api/docs`` page and Swagger
UI's assets) are copied into ``DIR/static``, where ``GATEWAY_STATIC_DIR``'s default (``static``,
relative to nginx's prefix) points: ``openapi/openapi.json``, ``openapi/docs/`` and the files of
``node_modules/swagger-ui-dist`` that the page loads (``npm ci``, which ``make venv`` runs, installs
them). Copies keep their modification times, so ETags stay the same from one start to the next. When
Swagger UI is not installed the gateway still starts, says so on stderr, and /api/docs answers
404. With ``GATEWAY_STATIC_DIR`` set in the environment, that directory is used as it is.

``--check`` renders the same way and runs ``nginx -t`` on the result instead.
Standard library only; nginx is looked up on PATH, then in /usr/sbin (or given with --nginx).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import stat
import sys
from pathlib import Path
from typing import NoReturn

import render_config

SERVICE_DIR = Path(__file__).resolve().parent.parent
MAIN_CONFIG = SERVICE_DIR / "config" / "nginx.conf"
TEMPLATE_DIR = SERVICE_DIR / "config" / "templates"
# The public contract (openapi.json) and the reference page's own files (docs/).
OPENAPI_DIR = SERVICE_DIR / "openapi"
SWAGGER_UI_DIR = SERVICE_DIR / "node_modules" / "swagger-ui-dist"
# What the page loads from the swagger-ui-dist package (the Dockerfile copies the same files).
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
STATIC_VARIABLE = "GATEWAY_STATIC_DIR"

# The account nginx's workers switch to when the master starts as root and no `user` is configured.
_DEFAULT_WORKER_USER = "nobody"


def prepare_workdir(workdir: Path) -> Path:
    """Write nginx.conf and a freshly rendered conf.d/ into ``workdir``; return the former."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf_d = workdir / "conf.d"
    # A stale file from an earlier render (a template since renamed) must not stay included.
    if conf_d.exists():
        shutil.rmtree(conf_d)
    render_config.render_templates(TEMPLATE_DIR, conf_d, os.environ)
    if STATIC_VARIABLE not in os.environ:
        missing = prepare_static(workdir / render_config.DEFAULTS[STATIC_VARIABLE])
        if missing:
            print(
                f"run_local: Swagger UI is not installed ({', '.join(missing)} missing from "
                f"{SWAGGER_UI_DIR}; `npm ci` in {SERVICE_DIR.name} installs it): "
                "/api/docs answers 404",
                file=sys.stderr,
            )
    main_config = workdir / "nginx.conf"
    shutil.copyfile(MAIN_CONFIG, main_config)
    return main_config


def prepare_static(static_dir: Path) -> list[str]:
    """Lay out the files the gateway serves in ``static_dir``; return Swagger UI's missing ones."""
    if static_dir.exists():
        shutil.rmtree(static_dir)
    static_dir.mkdir(parents=True)
    shutil.copy2(OPENAPI_DIR / "openapi.json", static_dir / "openapi.json")
    shutil.copytree(OPENAPI_DIR / "docs", static_dir / "docs")
    missing = []
    for name in SWAGGER_UI_FILES:
        if (SWAGGER_UI_DIR / name).is_file():
            shutil.copy2(SWAGGER_UI_DIR / name, static_dir / "docs" / name)
        else:
            missing.append(name)
    return missing


def worker_user_directive(workdir: Path) -> str:
    """Return the ``user`` directive the workers need when nginx starts as root, else ``""``.

    Started as root, nginx runs its workers as ``nobody``, and they write request bodies and large
    upstream answers into the temp directories inside ``workdir``. That needs every directory above
    them to be searchable by others. The workdir itself is opened up; when a parent is private (a
    0700 temp directory, for instance) the workers keep root instead, which is acceptable for a
    local run and noted on stderr. The container never runs as root.
    """
    if os.geteuid() != 0:
        return ""
    workdir.chmod(workdir.stat().st_mode | 0o755)
    for directory in (workdir, *workdir.parents):
        if not directory.stat().st_mode & stat.S_IXOTH:
            print(
                f"run_local: {directory} is not searchable by {_DEFAULT_WORKER_USER}; "
                "nginx workers keep running as root",
                file=sys.stderr,
            )
            return "user root;"
    try:
        pwd.getpwnam(_DEFAULT_WORKER_USER)
    except KeyError:
        return "user root;"
    return ""


def find_nginx(name: str) -> str | None:
    """Locate the nginx executable: on PATH, else where Debian installs it (/usr/sbin)."""
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin"])
    return shutil.which(name, path=search_path)


def nginx_command(nginx: str, workdir: Path, main_config: Path, *, check: bool) -> list[str]:
    """Build the nginx command line for ``workdir``."""
    directives = " ".join(filter(None, ["daemon off;", worker_user_directive(workdir)]))
    command = [nginx, "-p", f"{workdir}/", "-c", str(main_config), "-e", "stderr", "-g", directives]
    if check:
        command.append("-t")
    return command


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, required=True, help="directory for the config, pid and temp files"
    )
    parser.add_argument("--nginx", default="nginx", help="nginx executable (default: from PATH)")
    parser.add_argument(
        "--check", action="store_true", help="test the rendered configuration and exit"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Render into the workdir and exec nginx; returns only when that cannot be done."""
    args = _parse_args(argv)
    nginx = find_nginx(args.nginx)
    if nginx is None:
        print(f"run_local: {args.nginx} not found (Debian package: nginx-light)", file=sys.stderr)
        return 127
    workdir = args.workdir.resolve()
    try:
        main_config = prepare_workdir(workdir)
    except render_config.RenderError as error:
        print(f"run_local: {error}", file=sys.stderr)
        return 1
    return _become(nginx_command(nginx, workdir, main_config, check=args.check))


def _become(command: list[str]) -> NoReturn:
    """Replace this process with ``command`` (same pid, so signals go straight to nginx)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
