"""A bad setting, config file or keymap is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_similar import incidex


def assert_usage_error(result: object, *expected: str) -> None:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("incidex: "), stderr
    for text in expected:
        assert text in lines[0]


def test_a_bad_environment_value_names_the_variable() -> None:
    result = incidex("verify", env={"INCIDEX_BUSY_TIMEOUT_SECONDS": "abc"})
    assert_usage_error(result, "INCIDEX_BUSY_TIMEOUT_SECONDS: input should be a valid number")


def test_the_value_is_not_echoed_as_it_may_be_a_secret() -> None:
    result = incidex("verify", env={"INCIDEX_INDEX_NPROBE": "s3cr3t-value"})
    assert_usage_error(result, "INCIDEX_INDEX_NPROBE")
    assert "s3cr3t-value" not in result.stderr


@pytest.mark.parametrize(("content", "expected"), [
    ("chat_model = \n", "not valid TOML"),
    ("chat_modle = 'gpt-4o'\n", "unknown setting 'chat_modle'"),
    ("save_batch_size = 'many'\n", "save_batch_size: input should be a valid integer"),
])
def test_a_bad_config_file_names_the_file_and_key(tmp_path: Path, content: str,
                                                  expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    result = incidex("verify", env={"INCIDEX_CONFIG_FILE": str(config)})
    assert_usage_error(result, str(config), expected)
    assert_usage_error(incidex("--config", str(config), "verify"), expected)


def test_the_default_config_file_is_checked_too(tmp_path: Path) -> None:
    default = tmp_path / "config" / "incidex" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("[keymap\n")
    assert_usage_error(incidex("verify"), str(default), "not valid TOML")


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert_usage_error(incidex("verify", env={"INCIDEX_CONFIG_FILE": str(missing)}),
                       f"INCIDEX_CONFIG_FILE: no such file {missing}")
    assert_usage_error(incidex("--config", str(tmp_path), "verify"), "is a directory")


@pytest.mark.parametrize(("keymap", "expected"), [
    ('{"list.dwn": "n"}', "unknown binding id 'list.dwn'"),
    ('{"list.down": " , "}', "'list.down' has no key"),
    ('{"list.down": ', "INCIDEX_KEYMAP: not valid JSON"),
    ('["list.down"]', "INCIDEX_KEYMAP: input should be a valid dictionary"),
])
def test_a_bad_keymap_is_refused_before_the_app_opens(keymap: str, expected: str) -> None:
    assert_usage_error(incidex(env={"INCIDEX_KEYMAP": keymap}), expected)


def test_every_binding_the_help_lists_can_be_remapped() -> None:
    from tui.app import binding_ids, check_keymap, help_sections

    listed = {binding.id for _where, section in help_sections() for binding in section
              if getattr(binding, "id", None)}
    assert listed <= binding_ids()
    assert {"prompt.cancel", "help.close", "import_errors.close"} <= binding_ids()
    check_keymap({binding_id: "x" for binding_id in binding_ids()})
