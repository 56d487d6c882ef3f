"""``--help`` of every rvclab subcommand against docs/parameters.md and the values the commands use.

The parser is built as ``rvclab`` builds it (every subcommand completed) and walked through each
subparser's actions. Every option must have help; an option with a default must state it; a
numeric option must state its range. For ``rvclab convert`` and ``rvclab stream``, every option
must appear in a table of docs/parameters.md, and the default the help states must equal the
default the docs table states and the value the command really uses: the ``rvclab convert``
arguments after :func:`check_parameters` (which fills in the default profile's values), the
``convert_voice`` signature, and ``StreamConfig``'s fields. The docs tables are read, not copied.
"""

from __future__ import annotations

import argparse
import inspect
import re
from functools import cache
from pathlib import Path

from rvclab.cli import build_parser
from rvclab.pipeline.batch_options import check_parameters
from rvclab.pipeline.conversion import convert_voice
from rvclab.profiles import DEFAULT_PROFILE, PROFILES
from rvclab.stream import StreamConfig

DOCS = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"
FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction)  # presence is the value
# a stated range: [a, b], >= x, > x, <= x, "any", or argparse choices
RANGE = re.compile(r"\[[^\]]+,[^\]]+\]|[<>]=?\s*-?\d|\bany\b")
DEFAULT_CLAUSE = re.compile(r"\(default:? ([^()]*)\)$")  # the clause ending a help text
REQUIRED_ARGS = dict(convert=["-m", "v.pth", "-i", "a.wav", "-o", "o.wav"], stream=["-m", "v.pth"])


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


@cache
def parsers() -> dict[str, argparse.ArgumentParser]:
    """Subcommand path ("convert", "parity synth", "" for rvclab itself) -> its parser."""
    return dict(_walk(build_parser()))


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)]


def _name(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text as ``--help`` prints it (%(default)s and %(choices)s filled), on one line."""
    return " ".join(parser._get_formatter()._expand_help(action).split()) if action.help else ""


def _every_option():
    for command, parser in parsers().items():
        for action in _options(parser):
            yield command, parser, action


def _value(text: str):
    """The value a default states: its first word ("the profile's: " skipped); None for none; numbers as float."""
    text = re.sub(r"^the profile's[:;]?\s*", "", text.replace("`", "").replace('"', "").strip())
    words = re.findall(r"[^\s,;:()]+", text)
    return _norm(words[0] if words else "")


def _norm(value):
    if value is None or str(value).lower() == "none":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _help_default(parser, action):
    """The default a help text's closing '(default ...)' clause states, and whether it is the profile's."""
    text = _help(parser, action)
    m = DEFAULT_CLAUSE.search(text)
    assert m, f"{action.option_strings[-1]}: help does not end with a '(default ...)' clause: {text!r}"
    clause = m.group(1)
    if clause.startswith("the profile's"):
        mine = re.search(rf"(?:{re.escape(DEFAULT_PROFILE)}|every profile): ([^,;]+)", clause)
        assert mine, f"{action.option_strings[-1]}: the profile's default does not name {DEFAULT_PROFILE}: {text!r}"
        return _value(mine.group(1)), True
    return _value(clause), False


@cache
def doc_rows() -> dict[str, list[dict]]:
    """Command ("convert", "stream") -> the rows of docs/parameters.md's tables in the sections naming it.

    Each row: its cells by header, plus "flags" (the options in its first cell, or in its CLI column)."""
    out: dict[str, list[dict]] = {"convert": [], "stream": []}
    section, header = "", None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            section, header = line, None
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
            continue
        if not "".join(cells).strip("-: "):
            continue  # the separator row
        row = dict(zip(header, cells, strict=True))
        row["flags"] = re.findall(r"`(--?[a-z][\w-]*)`", row.get("CLI", cells[0]))
        for command in out:
            if f"rvclab {command}" in section:
                out[command].append(row)
    assert out["convert"] and out["stream"], f"{DOCS}: no tables in sections naming rvclab convert / rvclab stream"
    return out


def _action(command: str, flag: str) -> argparse.Action:
    parser = parsers()[command]
    assert flag in parser._option_string_actions, f"docs/parameters.md names {command} {flag}, which it lacks"
    return parser._option_string_actions[flag]


def test_every_subcommand_is_walked():
    names = set(parsers())
    for command in ("convert", "stream", "parity synth", "parity e2e", "bench", "index build", "index info",
                    "weights make", "demo", "lab", "info", "convert-weights"):
        assert command in names, command


def test_every_option_has_help():
    bad = [f"rvclab {command} {_name(a)}" for command, parser, a in _every_option() if not _help(parser, a)]
    assert not bad, "options without help:\n" + "\n".join(bad)


def test_every_default_is_stated():
    bad = []
    for command, parser, a in _every_option():
        if a.default is None or a.default is argparse.SUPPRESS or isinstance(a, FLAG_ACTIONS):
            continue
        text = _help(parser, a)
        if "default" not in text or str(a.default) not in text:
            bad.append(f"rvclab {command} {_name(a)} (default {a.default!r}): {text!r}")
    assert not bad, "options whose help does not state their default:\n" + "\n".join(bad)


def test_numeric_options_state_their_range():
    bad = [f"rvclab {command} {_name(a)}: {_help(parser, a)!r}" for command, parser, a in _every_option()
           if a.type in (int, float) and not a.choices and not RANGE.search(_help(parser, a))]
    assert not bad, "numeric options without a range ([a, b], >= x, any):\n" + "\n".join(bad)


def test_every_option_is_documented():
    bad = []
    for command, rows in doc_rows().items():
        documented = {f for row in rows for f in row["flags"]}
        bad += [f"rvclab {command} {_name(a)}" for a in _options(parsers()[command])
                if not set(a.option_strings) & documented]
    assert not bad, f"options missing from the tables of {DOCS.name}:\n" + "\n".join(bad)


def test_documented_ranges_are_in_the_help():
    bad = []
    for command, rows in doc_rows().items():
        for row in rows:
            wanted = row.get("range", "-").replace("`", "")
            for flag in row["flags"] if wanted != "-" else ():
                text = _help(parsers()[command], _action(command, flag))
                if wanted not in text:
                    bad.append(f"rvclab {command} {flag}: docs range {wanted!r} not in {text!r}")
    assert not bad, "\n".join(bad)


def test_convert_defaults_match_docs_cli_and_profile():
    """For each conversion parameter: help's default == the docs table's == what rvclab convert passes
    (the default profile's value, filled in by check_parameters) == convert_voice's own default."""
    parser = parsers()["convert"]
    args = parser.parse_args(REQUIRED_ARGS["convert"])
    check_parameters(args)  # fills in the reference profile's values
    signature = inspect.signature(convert_voice).parameters
    bad, seen = [], 0
    for row in doc_rows()["convert"]:
        api = re.match(r"`(\w+)`", row[next(iter(row))])
        if not api or api.group(1) not in signature or not row["flags"]:
            continue
        seen += 1
        name, action = api.group(1), _action("convert", row["flags"][0])
        stated, profiles = _help_default(parser, action)
        docs, used, own = _value(row["our default"]), _norm(getattr(args, action.dest)), signature[name].default
        if not stated == docs == used:
            bad.append(f"{action.option_strings[-1]} ({name}): help {stated!r}, docs {docs!r}, rvclab convert {used!r}")
        if own is None and used is not None:  # the profile's value: both must say so
            if not (profiles and row["our default"].startswith("the profile's")):
                bad.append(f"{action.option_strings[-1]}: its default is the profile's; help and docs must say so")
        elif _norm(own) != used:
            bad.append(f"{action.option_strings[-1]}: convert_voice's default {own!r}, rvclab convert's {used!r}")
    assert seen >= 10, f"only {seen} conversion parameters found in {DOCS.name}"
    assert not bad, "\n".join(bad)


def test_stream_defaults_match_docs_and_config():
    parser = parsers()["stream"]
    args = parser.parse_args(REQUIRED_ARGS["stream"])
    config = StreamConfig()
    bad, seen = [], 0
    for row in doc_rows()["stream"]:
        field = re.match(r"`(\w+)`", row[next(iter(row))])
        if not field or not hasattr(config, field.group(1)) or not row["flags"]:
            continue
        seen += 1
        action = _action("stream", row["flags"][0])
        stated, _ = _help_default(parser, action)
        used = config.method if field.group(1) == "f0_method" else getattr(config, field.group(1))
        docs, cli = _value(row["default"]), getattr(args, action.dest)
        if not stated == docs == _norm(used) or (cli is not None and _norm(cli) != _norm(used)):
            bad.append(f"{action.option_strings[-1]} ({field.group(1)}): help {stated!r}, docs {docs!r}, "
                       f"StreamConfig {used!r}, CLI {cli!r}")
    assert seen >= 10, f"only {seen} StreamConfig fields found in {DOCS.name}"
    assert not bad, "\n".join(bad)


def test_shared_parameters_are_worded_alike():
    """A parameter of both convert and stream reads the same in both, up to its default clause."""
    convert, stream = parsers()["convert"], parsers()["stream"]
    bad = []
    for row in doc_rows()["convert"]:
        if not re.match(r"`\w+`", row[next(iter(row))]):
            continue  # not a conversion parameter (-i and -o differ: a folder, a live stream)
        for flag in row["flags"]:
            if flag not in stream._option_string_actions:
                continue
            texts = [DEFAULT_CLAUSE.sub("", _help(p, _action(c, flag))).strip()
                     for c, p in (("convert", convert), ("stream", stream))]
            if texts[0] != texts[1]:
                bad.append(f"{flag}: convert {texts[0]!r}, stream {texts[1]!r}")
    assert not bad, "\n".join(bad)


def test_enumerations_list_their_choices():
    """--reference lists every profile; --f0-method each profile's methods, in its order."""
    bad = []
    for command in ("convert", "stream"):
        parser = parsers()[command]
        reference = _help(parser, _action(command, "--reference"))
        bad += [f"{command} --reference: {name}" for name in PROFILES if name not in reference]
        method = _help(parser, _action(command, "--f0-method"))
        bad += [f"{command} --f0-method: {p.name}" for p in PROFILES.values()
                if f"{p.name}: {', '.join(p.f0_method_names)}" not in method]
    assert not bad, "choices missing from the help:\n" + "\n".join(bad)
