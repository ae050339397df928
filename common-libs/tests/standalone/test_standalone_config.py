"""What the runner refuses before it starts anything: the table, PORT, NEIGHBOURS, missing files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from support.standalone import write_table

from common_libs.testing import free_port
from common_libs.testing.standalone import (
    StandaloneError,
    Stop,
    neighbours,
    read_config,
    run,
    service_port,
)


def test_the_sample_table_reads_with_its_defaults(sample: Path) -> None:
    config = read_config(sample)

    assert (config.app, config.prefix, config.database, config.port) == (
        "sample_app.main:create_app",
        "SAMPLE_",
        "sample",
        8999,
    )
    assert config.nats is True
    assert config.tokens is False
    assert config.llm is False
    assert config.stand_ins == {}
    assert config.environment == {"GREETING": "hello from the environment table"}


def test_a_folder_without_pyproject_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StandaloneError, match="not found: run this in a service's src/"):
        read_config(tmp_path)


def test_a_pyproject_without_the_table_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')

    with pytest.raises(StandaloneError, match=r"no \[tool.common-libs.standalone\] table"):
        read_config(tmp_path)


def test_a_pyproject_that_is_no_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool\n")

    with pytest.raises(StandaloneError, match="is no valid TOML"):
        read_config(tmp_path)


@pytest.mark.parametrize(
    ("keys", "complaint"),
    [
        ({"prefix": "sample"}, "prefix: String should match pattern"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"stand_ins": {"Catalog-URL": "p.json"}}, "'Catalog-URL' is no setting name"),
        ({"environment": {"lower": "x"}}, "'lower' is no variable name"),
    ],
)
def test_a_wrong_table_is_refused_naming_the_key(
    sample: Path, keys: dict[str, object], complaint: str
) -> None:
    write_table(sample, **keys)  # type: ignore[arg-type]

    with pytest.raises(StandaloneError, match=r"tool\.common-libs\.standalone") as raised:
        read_config(sample)

    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "stand-ins"), ("", "stand-ins"), ("fleet", "fleet")]
)
def test_neighbours_are_stand_ins_or_the_fleet(value: str | None, mode: str) -> None:
    assert neighbours({} if value is None else {"NEIGHBOURS": value}) == mode


def test_another_neighbours_value_is_refused() -> None:
    with pytest.raises(StandaloneError, match="NEIGHBOURS='nearby' is not understood"):
        neighbours({"NEIGHBOURS": "nearby"})


def test_a_port_in_use_is_refused(sample: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(StandaloneError, match=f"port {port} on 127.0.0.1 is in use"):
            service_port(read_config(sample), {"PORT": str(port)})


def test_port_comes_from_the_environment_else_the_table(sample: Path) -> None:
    config = read_config(sample)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]

    assert service_port(config, {"PORT": str(free)}) == free
    assert service_port(config, {}) == 8999


@pytest.mark.parametrize("value", ["0", "65536", "80a", "-1"])
def test_a_port_that_is_no_port_number_is_refused(sample: Path, value: str) -> None:
    with pytest.raises(StandaloneError, match="is no TCP port number"):
        service_port(read_config(sample), {"PORT": value})


def test_a_missing_pact_is_refused_before_anything_starts(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(sample, stand_ins={"greeter_url": "pacts/missing.json"})

    assert run(sample, {**os.environ, "PORT": str(free_port())}, Stop()) == 2
    assert "plays" in capsys.readouterr().out
    assert not (sample / ".run").exists()


def test_missing_llm_rules_are_refused_before_anything_starts(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_table(sample, llm=True, **{"llm-rules": "rules.json"})

    assert run(sample, {**os.environ, "PORT": str(free_port())}, Stop()) == 2
    assert "llm-rules names" in capsys.readouterr().out
