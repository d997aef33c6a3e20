from __future__ import annotations

import pytest

from patchtrace.config import Config, ConfigError, from_env, parse_mode, parse_patterns


@pytest.mark.parametrize(
    ("value", "mode"),
    [("1", "report"), ("on", "report"), ("REPORT", "report"), ("strict", "strict"),
     ("", "off"), ("0", "off"), ("off", "off"), (None, "off"), (" 1 ", "report")],
)
def test_modes(value: str | None, mode: str) -> None:
    assert parse_mode(value) == mode


def test_bad_mode_names_variable_value_and_accepted_values() -> None:
    with pytest.raises(ConfigError) as info:
        parse_mode("nonsense")
    message = str(info.value)
    assert "PATCHTRACE='nonsense'" in message
    assert "strict" in message and "report" in message


def test_bad_pdb_value() -> None:
    with pytest.raises(ConfigError, match="PATCHTRACE_PDB"):
        from_env({"PATCHTRACE": "1", "PATCHTRACE_PDB": "maybe"})


def test_show_secrets_value_is_checked() -> None:
    with pytest.raises(ConfigError, match="PATCHTRACE_SHOW_SECRETS='perhaps'"):
        from_env({"PATCHTRACE": "1", "PATCHTRACE_SHOW_SECRETS": "perhaps"})


def test_from_env_reads_every_variable() -> None:
    config = from_env({
        "PATCHTRACE": "strict", "PATCHTRACE_JSON": "a.json", "PATCHTRACE_HTML": "a.html",
        "PATCHTRACE_GRAPHS": "g", "PATCHTRACE_PDB": "1",
        "PATCHTRACE_IGNORE": "os.environ.CI,module:pkg.*",
    })
    assert config.strict and config.json == "a.json" and config.html == "a.html"
    assert config.graphs == "g" and config.pdb
    assert config.ignore == ("os.environ.CI", "module:pkg.*")


def test_ignore_patterns_match_target_and_name() -> None:
    config = Config(ignore=parse_patterns("os.environ.HOME\nmodule:pkg.*\n# comment"))
    assert config.ignored("os.environ", "HOME", "os.environ['HOME']")
    assert config.ignored("module:pkg.mod", "func", "pkg.mod.func")
    assert not config.ignored("module:other", "func", "other.func")
