"""The primary's binary log filters (binlog-do-db / binlog-ignore-db): read from its own SHOW
MASTER STATUS, and db.replication fails when they leave out the application's database."""

import pytest

from lab.facts import mysql
from tests.helpers import judge, recorded

# `/usr/bin/mysql --vertical -e 'SHOW MASTER STATUS'` on web-01 of a reference lab (Debian 12,
# MariaDB 10.11), 2026-12-07, as root; then with `binlog_ignore_db = webstack` added to
# 60-webstack.cnf and MariaDB restarted (SHOW BINLOG STATUS answered the same); lines as printed
REFERENCE = "\n".join(
    (
        "*************************** 1. row ***************************",
        "            File: mysql-bin.000004",
        "        Position: 1431",
        "    Binlog_Do_DB: ",
        "Binlog_Ignore_DB: ",
    )
)
IGNORED = "\n".join(
    (
        "*************************** 1. row ***************************",
        "            File: mysql-bin.000003",
        "        Position: 342",
        "    Binlog_Do_DB: ",
        "Binlog_Ignore_DB: webstack",
    )
)
# MySQL 8's has one more column (not recorded: the lab's database is MariaDB)
MYSQL_DO = "\n".join(
    (
        "*************************** 1. row ***************************",
        "             File: binlog.000002",
        "         Position: 157",
        "     Binlog_Do_DB: shop,webstack",
        " Binlog_Ignore_DB: ",
        "Executed_Gtid_Set: ",
    )
)


def test_the_reference_primary_logs_every_database():
    assert mysql.binlog_filters(REFERENCE) == {}
    assert mysql.unlogged({}, "webstack") is None


def test_no_binary_log_or_no_answer_shows_no_filter():
    assert mysql.binlog_filters("") == {}  # SHOW MASTER STATUS is empty without log_bin
    assert mysql.binlog_filters("ERROR 1227 (42000): Access denied") == {}


def test_binlog_ignore_db_naming_the_database_leaves_it_out():
    filters = mysql.binlog_filters(IGNORED)
    assert filters == {"Binlog_Ignore_DB": "webstack"}
    assert mysql.unlogged(filters, "webstack") == "Binlog_Ignore_DB=webstack"
    assert mysql.unlogged(filters, "gb") is None
    assert mysql.unlogged({"Binlog_Ignore_DB": "mirror,webstack"}, "webstack") == (
        "Binlog_Ignore_DB=mirror,webstack"
    )


def test_a_do_list_logs_only_what_it_names():
    filters = mysql.binlog_filters(MYSQL_DO)
    assert filters == {"Binlog_Do_DB": "shop,webstack"}
    assert mysql.unlogged(filters, "webstack") is None
    assert mysql.unlogged(filters, "gb") == "Binlog_Do_DB=shop,webstack"


def test_a_do_list_alone_decides_as_the_servers_do():
    """With binlog-do-db given, binlog-ignore-db is not consulted (MySQL's and MariaDB's
    documented evaluation of the binary log options)."""
    both = {"Binlog_Do_DB": "webstack", "Binlog_Ignore_DB": "webstack"}
    assert mysql.unlogged(both, "webstack") is None
    assert mysql.unlogged({"Binlog_Do_DB": "shop"}, "webstack") == "Binlog_Do_DB=shop"


def test_the_command_asks_the_primary_in_either_flavour():
    assert "SHOW MASTER STATUS" in mysql.BINLOG_STATUS  # MariaDB, MySQL 8.0
    assert "SHOW BINARY LOG STATUS" in mysql.BINLOG_STATUS  # MySQL 8.4 (no SHOW MASTER STATUS)


def _replication(binlog_filters=None):
    o = recorded("db.replication")
    if binlog_filters is not None:
        o["binlog_filters"] = binlog_filters
    return o


def test_replication_faked_past_a_primary_that_does_not_log_the_application_fails():
    """The reviewer's fake: the primary ignores webstack in its binary log while a copy loop on
    the replica mirrors the table only while the SQL thread runs. The replica holds every
    entry and the paused one waited (as recorded on the reference): the primary's filter alone
    fails it."""
    verdict = judge("db.replication", _replication(mysql.binlog_filters(IGNORED)))
    assert not verdict.passed
    assert verdict.evidence.startswith(
        "web-01's binary log leaves out the application's database webstack "
        "(Binlog_Ignore_DB=webstack)"
    ), verdict.evidence
    assert "binlog-do-db/binlog-ignore-db" in verdict.hint


def test_a_do_list_without_the_application_database_fails():
    verdict = judge("db.replication", _replication({"Binlog_Do_DB": "shop"}))
    assert not verdict.passed
    assert "leaves out the application's database webstack (Binlog_Do_DB=shop)" in (
        verdict.evidence
    )


@pytest.mark.parametrize(
    "binlog_filters",
    [None, {}, {"Binlog_Do_DB": "webstack"}, {"Binlog_Ignore_DB": "mirror"}],
    ids=["recorded-before-the-primary-was-read", "none", "do-the-application", "ignore-another"],
)
def test_a_binary_log_that_keeps_the_application_database_passes(binlog_filters):
    verdict = judge("db.replication", _replication(binlog_filters))
    assert verdict.passed, verdict.evidence
