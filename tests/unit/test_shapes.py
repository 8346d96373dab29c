"""lab.core.shapes: plain data held to a type at run time."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import pytest

from lab.core.shapes import mismatches


class Server(TypedDict):
    name: str
    port: int | None
    weight: float


class Balancer(TypedDict):
    host: str
    servers: list[Server]
    by_host: dict[str, bool]
    mode: Literal["http", "tcp"]
    error: NotRequired[str]


GOOD: Balancer = {
    "host": "lb-01",
    "servers": [
        {"name": "web-01", "port": 80, "weight": 1},
        {"name": "b", "port": None, "weight": 0.5},
    ],
    "by_host": {"web-01": True},
    "mode": "http",
}


def test_a_value_of_the_shape_has_no_mismatch():
    assert mismatches(GOOD, Balancer) == []
    assert mismatches({**GOOD, "error": "refused"}, Balancer) == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"host": None}, "observation.host: None, not str"),
        ({"mode": "udp"}, "observation.mode: 'udp' is not one of ['http', 'tcp']"),
        ({"by_host": {"web-01": "yes"}}, "observation.by_host['web-01']: a str ('yes'), not bool"),
        ({"servers": [{"name": "a", "port": "80", "weight": 1}]}, "observation.servers[0].port"),
        ({"servers": [{"name": "a", "port": True, "weight": 1}]}, "observation.servers[0].port"),
        ({"extra": 1}, "'extra' is not a key of Balancer"),
        ({"error": 3}, "observation.error: a int (3), not str"),
    ],
)
def test_each_difference_is_named_where_it_is(change, said):
    problems = mismatches({**GOOD, **change}, Balancer)
    assert len(problems) == 1 and said in problems[0], problems


def test_a_missing_key_is_named_unless_it_is_not_required():
    value = {k: v for k, v in GOOD.items() if k != "servers"}
    assert mismatches(value, Balancer) == ["observation: no 'servers'"]


def test_lists_stand_for_tuples_and_ints_for_floats_as_json_writes_them():
    assert mismatches([1, "a"], tuple[int, str]) == []
    assert mismatches([1], tuple[int, str]) == ["observation: 1 items, not 2"]
    assert mismatches([1, 2], tuple[int, ...]) == []
    assert mismatches(2, float) == [] and mismatches(True, float) != []


def test_any_accepts_everything_and_an_unknown_type_is_refused():
    assert mismatches({"x": object()}, dict[str, Any]) == []
    with pytest.raises(TypeError):
        mismatches(1, set[int])


class Partial(Balancer, total=False):
    reading: str


def test_a_subclass_keeps_its_bases_required_keys():
    assert mismatches(GOOD, Partial) == []
    assert mismatches({"reading": "x"}, Partial)[:1] == ["observation: no 'by_host'"]
