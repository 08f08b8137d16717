"""Every key of a city config is read at run time, or refused until it is: the schema's leaves are exactly the
keys `app.domain.config_keys.READERS` names a reader for, plus the explicit allow-list below of keys no code
reads yet (each with the part of issue 17 that will read it), plus keys the schema fixes to one value. Each
reader still exists and still uses its key; validation refuses a config that sets a not-yet-read key (or a
value only partly read) to anything but its default. That custody limits change what intake does is shown by
tests/web/test_custody_limits.py::test_the_limit_is_read_from_the_config (a sentinel limit in the config)."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app.domain.config_keys import NOT_YET_READ, READERS
from app.domain.timezone import SHANGHAI
from tests.unit.test_city_checks import _mutated, _problems, _write, folder
from tests.unit.test_config_corpus import CITY_SCHEMA, _schema_paths

__all__ = ["folder"]  # the city-checks fixture, used here as it is there

# Not yet read — remove a line when its part of issue 17 lands and its reader is added to READERS.
ALLOW_LIST = {}
# fixed by the schema to the one value the platform always uses
FIXED = {"timezone"}


def _paths() -> set[str]:
    schema = json.loads(CITY_SCHEMA.read_text(encoding="utf-8"))
    return _schema_paths(schema, schema)


def _leaves() -> set[str]:
    paths = _paths()
    return {path for path in paths if not any(other.startswith(path + "/") for other in paths)}


def test_every_key_of_the_schema_is_read_or_listed_as_not_yet_read() -> None:
    """Every leaf has a reader or is listed; a reader may also name a key that is a value or an object (a
    deadline: ISO 8601 text or working days), never a key the schema does not have."""
    covered = set(READERS) | set(ALLOW_LIST) | FIXED
    assert _leaves() - covered == set(), "a schema key nobody reads: add its reader or refuse it"
    assert covered - _paths() == set(), "a key the schema does not have"
    assert not set(READERS) & set(ALLOW_LIST), "a key that is read now: remove it from the allow-list"
    assert not (set(READERS) | set(ALLOW_LIST)) & FIXED


def test_the_allow_list_is_what_validation_refuses() -> None:
    refused = {leaf: part for leaf in _leaves() for prefix, part in NOT_YET_READ.items() if leaf.startswith(prefix)}
    assert refused == ALLOW_LIST


@pytest.mark.parametrize("key", sorted(READERS))
def test_each_reader_exists_and_uses_its_key(key: str) -> None:
    module_name, _, qualified = READERS[key].function.partition(":")
    reader: object = importlib.import_module(module_name)
    for name in qualified.split("."):
        reader = getattr(reader, name)
    assert callable(reader)
    assert READERS[key].uses in inspect.getsource(reader), f"{READERS[key].function} no longer reads {key}"


def test_the_fixed_timezone_is_the_platforms() -> None:
    schema = json.loads(CITY_SCHEMA.read_text(encoding="utf-8"))
    assert schema["properties"]["timezone"]["const"] == str(SHANGHAI)


UNREAD_VALUES: dict[str, tuple[Callable[[dict], None], str, str]] = {
    "release conditions the workflow does not wait for": (
        lambda p: p["renovation_escrow"]["release"].update(conditions=["stage_accepted", "stage_completed"]),
        "/products/renovation_escrow/release/conditions",
        "不按配置的放款条件放款",
    ),
    "a 90/10 plan on a workflow version that releases at once": (
        lambda p: p.update(
            gov_escrow={
                "workflow": {"id": "gov_escrow", "version": 1},
                "agreement": {"template": "gov_escrow/v1"},
                "release": {
                    "conditions": ["title_transferred", "gov_approved"],
                    "tranches": [{"label": "核准", "share_bps": 9000}, {"label": "余款", "remainder": True}],
                },
            }
        ),
        "/products/gov_escrow/release/tranches",
        "一次全额放款，不能分期",
    ),
    "a 90/10 intent deposit, which its declaration says is one deposit": (
        lambda p: p.update(
            intent_deposit={
                "release": {
                    "conditions": ["purchase_signed"],
                    "tranches": [{"label": "签约", "share_bps": 9000}, {"label": "余款", "remainder": True}],
                }
            }
        ),
        "/products/intent_deposit/release/tranches",
        "意向金是一笔定金：签订商品房买卖合同时整笔转为购房款，未签约则整笔原路退回，不能分期释放",
    ),
    "a split guarantee, which its declaration says is frozen and released whole": (
        lambda p: p.update(
            guarantee_release={
                "release": {
                    "conditions": ["conditions_met"],
                    "tranches": [{"label": "一半", "share_bps": 5000}, {"label": "余款", "remainder": True}],
                }
            }
        ),
        "/products/guarantee_release/release/tranches",
        "保证金整笔冻结、整笔处理",
    ),
}


@pytest.mark.parametrize("case", UNREAD_VALUES.values(), ids=UNREAD_VALUES.keys())
def test_a_value_no_code_reads_is_refused_in_chinese(folder: Path, case: tuple) -> None:
    mutate, pointer, zh = case
    _write(folder, "999901", _mutated(mutate))
    problems = _problems(folder, "999901")
    assert [p.pointer for p in problems if zh in p.message] == [pointer], [str(p) for p in problems]
