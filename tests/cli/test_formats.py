"""Every output format (-o table | json | csv) of every command that prints data, and the CSV
formula guard (CWE-1236): a cell starting with = + - @ (or tab / CR) never reaches a spreadsheet
as a formula, whatever field it is in.

The format classes are tested in-process for every OutputFormat member (a new format without a
check here fails); the commands through a real subprocess on the default SQLite store.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from finops_mcp_admin.cli._render import Format, OutputFormat

DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"]
ROWS = [{"id": "k1", "name": "alpha", "scopes": ["tools:read", "tools:write"], "owner": None,
         "legacy": False, "detail": {"origin": "https://a.example.com"}},
        {"id": "k2", "name": "bravo", "scopes": [], "owner": "team-b", "legacy": True, "detail": {}}]
COLUMNS = [("id", "ID"), ("name", "NAME"), ("owner", "OWNER")]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def table_lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def check_table_rows(text: str) -> None:
    lines = table_lines(text)
    assert lines[0] == ["ID", "NAME", "OWNER"]  # only the given columns, in order
    assert all(set(cell) == {"-"} for cell in lines[1])
    assert lines[2] == ["k1", "alpha", "-"] and lines[3] == ["k2", "bravo", "team-b"]


def check_json_rows(text: str) -> None:
    assert json.loads(text) == ROWS  # every field, values untouched


def check_csv_rows(text: str) -> None:
    rows = read_csv(text)
    assert list(rows[0]) == list(ROWS[0])  # every field, header from the data
    assert rows[0]["scopes"] == "tools:read tools:write" and rows[0]["owner"] == ""
    assert json.loads(rows[0]["detail"]) == {"origin": "https://a.example.com"}
    assert rows[1]["legacy"] == "true" and rows[0]["legacy"] == "false"  # as in JSON


ROW_CHECKS = {OutputFormat.table: check_table_rows, OutputFormat.json: check_json_rows,
              OutputFormat.csv: check_csv_rows}


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_renders_a_listing(fmt):
    formatter: Format = fmt.to_format()
    ROW_CHECKS[fmt](formatter.rows(ROWS, COLUMNS))


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_renders_one_record_with_every_field(fmt):
    text = fmt.to_format().record(ROWS[0])
    if fmt is OutputFormat.json:
        assert json.loads(text) == ROWS[0]
    elif fmt is OutputFormat.csv:
        assert [list(r) for r in read_csv(text)] == [list(ROWS[0])]
    else:
        lines = dict(line.split(None, 1) for line in text.splitlines())
        assert lines == {"id": "k1", "name": "alpha", "scopes": "tools:read tools:write",
                         "owner": "-", "legacy": "no", "detail": "origin=https://a.example.com"}


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_renders_an_empty_listing(fmt):
    text = fmt.to_format().rows([], COLUMNS)
    if fmt is OutputFormat.json:
        assert json.loads(text) == []
    elif fmt is OutputFormat.csv:
        assert text == "id,name,owner"  # the header alone, from the columns
    else:
        assert table_lines(text)[0] == ["ID", "NAME", "OWNER"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_csv_neutralises_a_cell_that_would_be_a_formula(value):
    rows = [{"id": "k1", "name": value, "owner": value, "scopes": [value]}]
    text = OutputFormat.csv.to_format().rows(rows, COLUMNS)
    assert text.count("'" + value) == 3
    if "\r" not in value:  # the csv module does not quote a bare CR (lineterminator is \n)
        parsed = read_csv(text)[0]
        assert [parsed[f] for f in ("name", "owner", "scopes")] == ["'" + value] * 3


@pytest.mark.parametrize("value", ["-", "a=b", "team-a", "1-2", ""])
def test_csv_leaves_ordinary_values_alone(value):
    parsed = read_csv(OutputFormat.csv.to_format().rows([{"name": value}], COLUMNS))[0]
    assert parsed["name"] == value


@pytest.mark.parametrize("value", DANGEROUS[:4])
def test_json_and_table_keep_the_value_as_it_is(value):
    assert json.loads(OutputFormat.json.to_format().rows([{"name": value}], COLUMNS)) == [{"name": value}]
    assert value in OutputFormat.table.to_format().record({"name": value})


# --- the commands --------------------------------------------------------------------------

EVIL_OWNER = "=HYPERLINK(\"http://evil\")"
EVIL_DESCRIPTION = "@SUM(1+1)"


@pytest.fixture
def key(cli):
    r = cli("keys", "create", "ci", "--scope", "tools:read", "--owner", EVIL_OWNER,
            "--description", EVIL_DESCRIPTION, "-o", "json")
    assert r.code == 0, r.stderr
    return r.json()


def test_keys_list_table_shows_the_listing_columns(cli, key):
    r = cli("keys", "list")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "OWNER", "SCOPES", "STATUS", "CREATED", "EXPIRES",
                                "LAST", "USED", "RATE", "MAX", "SESSIONS", "ALLOWED", "FROM"]
    assert lines[2].split()[:5] == [key["id"], "ci", EVIL_OWNER, "tools:read", "active"]


def test_keys_list_json_carries_every_field_unaltered(cli, key):
    listed = cli("keys", "list", "-o", "json").json()
    assert [(k["id"], k["owner"], k["description"], k["status"]) for k in listed] == \
        [(key["id"], EVIL_OWNER, EVIL_DESCRIPTION, "active")]
    assert "key" not in listed[0]


def test_keys_list_csv_neutralises_formulas(cli, key):
    r = cli("keys", "list", "-o", "csv")
    assert r.code == 0, r.stderr
    [row] = read_csv(r.stdout)
    assert row["id"] == key["id"] and row["scopes"] == "tools:read"
    assert row["owner"] == "'" + EVIL_OWNER and row["description"] == "'" + EVIL_DESCRIPTION


def test_keys_list_empty_says_none_on_stderr_in_table_form_only(cli):
    assert cli("cors", "add", "https://seed.example").code == 0  # an existing store without keys
    table = cli("keys", "list")
    assert table.code == 0 and table.stdout == "" and table.stderr.strip() == "(none)"
    assert cli("keys", "list", "-o", "json").json() == []
    assert cli("keys", "list", "-o", "csv").stdout.startswith("id,name,")


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_keys_show_prints_the_record_in_every_format(cli, key, fmt):
    r = cli("keys", "show", "ci", "-o", fmt.value)
    assert r.code == 0, r.stderr
    if fmt is OutputFormat.json:
        record = r.json()
    elif fmt is OutputFormat.csv:
        [record] = read_csv(r.stdout)
    else:
        record = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert record["id"] == key["id"] and record["status"] == "active"
    guard = "'" if fmt is OutputFormat.csv else ""
    assert record["owner"] == guard + EVIL_OWNER
    assert key["key"] not in r.stdout


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_keys_verify_reports_validity_in_every_format(cli, key, fmt):
    r = cli("keys", "verify", "-o", fmt.value, stdin=key["key"] + "\n")
    assert r.code == 0, r.stderr
    if fmt is OutputFormat.json:
        assert r.json()["valid"] is True
    elif fmt is OutputFormat.csv:
        assert read_csv(r.stdout)[0]["valid"] == "true"
    else:
        assert dict(line.split(None, 1) for line in r.stdout.splitlines())["valid"] == "yes"


def test_keys_create_csv_prints_the_new_key_once(cli):
    r = cli("keys", "create", "csv-one", "--owner", "+team", "-o", "csv")
    assert r.code == 0, r.stderr
    [row] = read_csv(r.stdout)
    assert row["key"].startswith("mcpk_") and row["owner"] == "'+team"


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_cors_list_in_every_format(cli, fmt):
    assert cli("cors", "add", "https://a.example.com").code == 0
    r = cli("cors", "list", "-o", fmt.value, env={"CORS_ALLOWED_ORIGINS": "https://b.example.com"})
    assert r.code == 0, r.stderr
    expected = [{"origin": "https://a.example.com", "source": "store"},
                {"origin": "https://b.example.com", "source": "env"}]
    if fmt is OutputFormat.json:
        assert r.json() == expected
    elif fmt is OutputFormat.csv:
        assert read_csv(r.stdout) == expected
    else:
        assert table_lines(r.stdout)[2:] == [["https://a.example.com", "store"],
                                             ["https://b.example.com", "env"]]


def test_revoke_reason_is_guarded_in_the_csv_listing(cli, key):
    assert cli("keys", "revoke", "ci", "--reason=-2+3").code == 0
    [row] = read_csv(cli("keys", "list", "--all", "-o", "csv").stdout)
    assert row["revoked_reason"] == "'-2+3" and row["status"] == "revoked"
