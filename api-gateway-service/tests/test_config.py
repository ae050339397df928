"""The configuration itself: rendering, `nginx -t`, the Dockerfile's defaults, pitfalls."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import render_config
from support.servers import SERVICE_DIR, gateway_environment, nginx_binary

RUN_LOCAL = SERVICE_DIR / "scripts" / "run_local.py"
TEMPLATE_DIR = SERVICE_DIR / "config" / "templates"
DOCKERFILE = SERVICE_DIR / "Dockerfile"

_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# envsubst also replaces $NAME without braces; the templates must not rely on either behaviour.
_UNBRACED_ENV_STYLE = re.compile(r"\$([A-Z][A-Z0-9_]*)")


def _check(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Render into ``workdir`` with ``env`` and run `nginx -t` on the result (run_local --check)."""
    command = [sys.executable, str(RUN_LOCAL), "--workdir", str(workdir), "--check"]
    return subprocess.run(
        [*command, "--nginx", nginx_binary()],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _rendered(workdir: Path) -> str:
    files = [workdir / "nginx.conf", *sorted((workdir / "conf.d").glob("*.conf"))]
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def test_default_configuration_passes_nginx_t(tmp_path: Path) -> None:
    result = _check(tmp_path, gateway_environment({}))

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    rendered = _rendered(tmp_path)
    assert "listen 127.0.0.1:8080 default_server;" in rendered
    for port in (8001, 8002, 8003, 8004):
        assert f"server 127.0.0.1:{port} " in rendered


def test_container_style_settings_pass_nginx_t(tmp_path: Path) -> None:
    env = gateway_environment(
        {name: f"localhost:{9000 + index}" for index, name in enumerate(("user", "catalog"))}
        | {"order": "127.0.0.1:9003", "chat": "[::1]:9004"},
        {
            "GATEWAY_LISTEN": "0.0.0.0:18080",
            "GATEWAY_MAX_BODY_SIZE": "512k",
            "GATEWAY_RATE_LIMIT": "30r/m",
            "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8",
            "GATEWAY_CHAT_READ_TIMEOUT": "10m",
        },
    )

    result = _check(tmp_path, env)

    assert result.returncode == 0, result.stderr
    rendered = _rendered(tmp_path)
    assert "server localhost:9000 " in rendered
    assert "set_real_ip_from 10.0.0.0/8;" in rendered
    assert "client_max_body_size 512k;" in rendered


def test_a_list_of_service_addresses_makes_each_a_server_of_both_groups(tmp_path: Path) -> None:
    replicas = "127.0.0.1:9001,127.0.0.1:9101,127.0.0.1:9201"

    result = _check(tmp_path, gateway_environment({"user": replicas}))

    assert result.returncode == 0, result.stderr
    servers = re.findall(r"server (127\.0\.0\.1:9[0-9]01) max_fails=3", _rendered(tmp_path))
    # Each replica in the kept-alive group and in the group of fresh connections.
    assert sorted(servers) == sorted(replicas.split(",") * 2)


def test_a_list_with_an_empty_or_unsafe_address_is_refused(tmp_path: Path) -> None:
    for replicas in ("127.0.0.1:9001,", "127.0.0.1:9001,x;include /y"):
        result = _check(tmp_path, gateway_environment({"catalog": replicas}))

        assert result.returncode == 1
        assert "CATALOG_SERVICE_UPSTREAM: " in result.stderr
        assert "is not a host:port" in result.stderr


def test_a_setting_that_is_not_one_token_is_refused(tmp_path: Path) -> None:
    result = _check(tmp_path, gateway_environment({}, {"GATEWAY_MAX_BODY_SIZE": "1m; include /x"}))

    assert result.returncode == 1
    assert "GATEWAY_MAX_BODY_SIZE='1m; include /x' is not a single nginx token" in result.stderr
    assert "test is successful" not in result.stderr


def test_rerendering_removes_files_of_an_earlier_render(tmp_path: Path) -> None:
    stale = tmp_path / "conf.d" / "renamed-template.conf"
    stale.parent.mkdir()
    stale.write_text("this is not nginx configuration\n")

    result = _check(tmp_path, gateway_environment({}))

    assert result.returncode == 0, result.stderr
    assert not stale.exists()


def test_only_braced_references_to_known_variables_are_replaced() -> None:
    text = "a ${GATEWAY_X}; b $GATEWAY_X; c ${request_id} $uri ${lower_case};"

    rendered = render_config.render_template_text(text, {"GATEWAY_X": "1"})

    assert rendered == "a 1; b $GATEWAY_X; c ${request_id} $uri ${lower_case};"


def test_unset_variable_is_an_error() -> None:
    with pytest.raises(render_config.RenderError, match="GATEWAY_MISSING"):
        render_config.render_template_text("x ${GATEWAY_MISSING};", {})


def test_environment_overrides_defaults_and_the_filter_keeps_others_out() -> None:
    variables = render_config.effective_environment(
        {"GATEWAY_RATE_LIMIT": "5r/s", "HOME": "/home/someone", "PATH": "/bin"}
    )

    assert variables["GATEWAY_RATE_LIMIT"] == "5r/s"
    assert variables["GATEWAY_MAX_BODY_SIZE"] == render_config.DEFAULTS["GATEWAY_MAX_BODY_SIZE"]
    assert "HOME" not in variables
    assert "PATH" not in variables


def test_outputs_are_named_like_the_images_entrypoint_names_them(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "sub").mkdir(parents=True)
    (templates / "a.conf.template").write_text("listen ${GATEWAY_LISTEN};\n")
    (templates / "sub" / "b.conf.template").write_text("# nothing\n")
    (templates / "notes.txt").write_text("not a template\n")

    outputs = render_config.render_templates(
        templates, tmp_path / "out", {"GATEWAY_LISTEN": "8081"}
    )

    assert sorted(path.relative_to(tmp_path / "out").as_posix() for path in outputs) == [
        "a.conf",
        "sub/b.conf",
    ]
    assert (tmp_path / "out" / "a.conf").read_text() == "listen 8081;\n"


def test_templates_use_exactly_the_documented_variables() -> None:
    used = {
        name
        for template in TEMPLATE_DIR.glob("*.template")
        for name in _BRACED.findall(template.read_text(encoding="utf-8"))
        if name.isupper()
    }

    assert used == set(render_config.DEFAULTS)
    assert all(re.search(render_config.DEFAULT_FILTER, name) for name in used)


def test_templates_have_no_unbraced_environment_references() -> None:
    for template in TEMPLATE_DIR.glob("*.template"):
        assert _UNBRACED_ENV_STYLE.findall(template.read_text(encoding="utf-8")) == [], template


def _dockerfile_env() -> dict[str, str]:
    instructions = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    for line in instructions.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line.removeprefix("ENV ")):
                name, _, value = word.partition("=")
                # Docker reads "\$" in double quotes as a literal "$"; shlex keeps the backslash.
                env[name] = value.replace("\\$", "$")
    return env


def test_dockerfile_defaults_match_the_local_defaults() -> None:
    env = _dockerfile_env()

    expected = render_config.DEFAULTS | {
        "GATEWAY_LISTEN": "0.0.0.0:8080",
        "GATEWAY_STATIC_DIR": "/usr/share/nginx/gateway",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert env["NGINX_ENVSUBST_FILTER"] == render_config.DEFAULT_FILTER


def test_dockerfile_builds_on_a_pinned_unprivileged_image_with_the_template_mechanism() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")

    assert re.search(r"^FROM nginxinc/nginx-unprivileged:\d+\.\d+\.\d+-alpine", text, re.M)
    assert "COPY --chown=101:0 config/templates/ /etc/nginx/templates/" in text
    assert "COPY --chown=101:0 config/nginx.conf /etc/nginx/nginx.conf" in text
    assert re.search(r"^USER 101$", text, re.M)
    assert text.rstrip().splitlines()[-1].startswith('CMD ["nginx", "-p", "/tmp/"')


def _location_blocks(text: str) -> list[str]:
    """The text of every location block (nested blocks included in their parent)."""
    blocks: list[str] = []
    for match in re.finditer(r"^\s*location\b[^{]*\{", text, re.M):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        blocks.append(text[match.end() : index - 1])
    return blocks


def test_inheritance_sensitive_directives_are_never_redefined_in_a_location(
    tmp_path: Path,
) -> None:
    # One of these in a location would silently drop all the server's (see nginx.conf).
    assert _check(tmp_path, gateway_environment({})).returncode == 0
    locations = _location_blocks(_rendered(tmp_path))

    assert len(locations) >= 15
    directive = re.compile(
        r"^\s*(add_header|proxy_set_header|proxy_hide_header|proxy_redirect|limit_req|error_page)\s",
        re.M,
    )
    assert [directive.findall(block) for block in locations if directive.search(block)] == []


def test_non_idempotent_requests_are_never_passed_to_another_upstream(tmp_path: Path) -> None:
    assert _check(tmp_path, gateway_environment({})).returncode == 0
    settings = re.findall(r"^\s*proxy_next_upstream\s+([^;]*);", _rendered(tmp_path), re.M)

    assert settings == ["error timeout"]


def test_every_error_nginx_answers_has_a_problem_title(tmp_path: Path) -> None:
    assert _check(tmp_path, gateway_environment({})).returncode == 0
    rendered = _rendered(tmp_path)
    pages = re.findall(r"^\s*error_page\s+([^;]*);", rendered, re.M)
    title_map = re.search(r"map \$status \$problem_title \{(.*?)\}", rendered, re.S)
    assert title_map is not None
    titles = set(re.findall(r"^\s*(\d{3})\s", title_map.group(1), re.M))

    codes: set[str] = set()
    for page in pages:
        words = page.split()
        overwrite = next((word[1:] for word in words if word.startswith("=")), None)
        statuses = [word for word in words if word.isdigit()]
        codes |= {overwrite} if overwrite else set(statuses)
    assert {"404", "405", "413", "429", "502", "503", "504", "431"} <= codes
    assert codes <= titles
