from __future__ import annotations

from collections.abc import Callable

import pytest

from patchtrace.config import (
    Config,
    ConfigError,
    from_env,
    parse_bool,
    parse_mode,
    parse_patterns,
)


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
    """A bad companion is reported (one line of ``problems``) and ignored: tracing stays on."""
    config = from_env({"PATCHTRACE": "1", "PATCHTRACE_PDB": "maybe"})
    assert config.enabled and not config.pdb
    [line] = config.problems
    assert "PATCHTRACE_PDB='maybe'" in line and line.endswith("; ignored")


@pytest.mark.parametrize(
    ("variable", "parse"),
    [("PATCHTRACE", parse_mode),
     ("PATCHTRACE_PDB", lambda value: parse_bool(value, "PATCHTRACE_PDB")),
     ("PATCHTRACE_SHOW_SECRETS", lambda value: parse_bool(value, "PATCHTRACE_SHOW_SECRETS"))],
)
def test_error_lists_exactly_the_accepted_values(variable: str,
                                                 parse: Callable[[str], object]) -> None:
    """The message is the user's only documentation at that moment: every value it lists
    must be accepted, and every accepted value listed (PATCHTRACE_PDB used to omit yes/no)."""
    with pytest.raises(ConfigError) as info:
        parse("maybe")
    listed = info.value.accepted
    assert len(set(listed)) == len(listed)
    for value in listed:
        parse(value)  # does not raise
    candidates = ["1", "0", "on", "off", "true", "false", "yes", "no", "y", "n", "report",
                  "strict", "enable", "disable", ""]
    for value in candidates:
        try:
            parse(value)
        except ConfigError:
            assert value not in listed, value
        else:
            assert value in listed, value
    rendered = ", ".join(v if v else "(empty)" for v in listed)
    assert str(info.value).endswith(f"accepted values: {rendered}")


def test_pdb_message_names_yes_and_no() -> None:
    with pytest.raises(ConfigError) as info:
        parse_bool("maybe", "PATCHTRACE_PDB")
    assert str(info.value) == ("PATCHTRACE_PDB='maybe' is not understood; accepted values: "
                               "1, on, true, yes, 0, off, false, no, (empty)")


def test_show_secrets_value_is_checked() -> None:
    config = from_env({"PATCHTRACE": "1", "PATCHTRACE_SHOW_SECRETS": "perhaps"})
    assert config.enabled
    [line] = config.problems
    assert "PATCHTRACE_SHOW_SECRETS='perhaps'" in line


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
