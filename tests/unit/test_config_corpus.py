"""Every shipped city config and workflow is valid, and the schemas agree with the loaders (drift)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.banks.registry import configured_banks
from app.domain.cities import SCHEMA_PATH as CITY_SCHEMA
from app.domain.cities import build_city, folder_reader, resolve
from app.domain.city_checks import validate_file
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, WORKFLOWS_DIR, build_registry, load_workflows
from app.products.loader import repository_products
from app.state_machine.loader import SCHEMA_PATH as WORKFLOW_SCHEMA
from app.state_machine.loader import build_definition

WORKFLOWS = load_workflows()
CONFIGS = sorted(CITY_CONFIGS_DIR.glob("*.json"))

PRODUCTS = repository_products()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_city_config_passes_every_check(path: Path) -> None:
    city = validate_file(path, WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    assert city.products, "a city runs at least one product"


def test_shipped_cities_say_what_the_issue_asks() -> None:
    cities = {
        path.stem: validate_file(path, WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS) for path in CONFIGS
    }
    assert set(cities) >= {"_virtual", "110000", "310000", "330100", "370100", "370200", "440300"}
    assert {"resale_escrow", "rent_custody"} <= set(cities["110000"].products)
    hangzhou = cities["330100"].product("gov_escrow")
    assert hangzhou.banks == ("icbc", "abc", "ccb") and "gov_supervision" in hangzhou.clauses
    assert "provident_fund_rent" in cities["370100"].products
    shenzhen = cities["440300"].product("rent_custody")
    assert shenzhen.parameters == {"rent_months_exempt": 3, "deposit_months_exempt": 1}
    beijing = cities["110000"].product("resale_escrow")
    assert (beijing.workflow_id, beijing.workflow_version, beijing.banks, beijing.agreement_template) == (
        "resale_escrow",
        1,
        ("ceb",),
        "resale_escrow/v1",
    )


def test_every_product_has_a_workflow() -> None:
    declared = {PRODUCTS.get(code).workflow_id for code in PRODUCTS.codes()}
    assert {workflow_id for workflow_id, _ in WORKFLOWS} == declared, "every workflow runs a declared product"
    assert {PRODUCTS.get(code).base for code in PRODUCTS.codes()} == declared, "each base product on its own workflow"
    assert len(list(WORKFLOWS_DIR.glob("*.json"))) == len(WORKFLOWS)


# --- drift: the paths the schema allows == the paths the loader reads ---------------------------------


class _Log:
    def __init__(self) -> None:
        self.paths: set[str] = set()


def _wrap(value: Any, path: str, log: _Log) -> Any:
    if isinstance(value, dict):
        return _RecordingDict(value, path, log)
    if isinstance(value, list):
        return _RecordingList(value, path, log)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


class _RecordingDict(dict):
    """A dict that logs the path of every key the loader asks for ('*' for keys it iterates over)."""

    def __init__(self, data: dict, path: str, log: _Log) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def _child(self, key: str) -> Any:
        self._log.paths.add(_join(self._path, key))
        return _wrap(super().__getitem__(key), _join(self._path, key), self._log)

    def __getitem__(self, key: str) -> Any:
        return self._child(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self._child(key)
        return default

    def __contains__(self, key: object) -> bool:
        self._log.paths.add(_join(self._path, str(key)))
        return super().__contains__(key)

    def items(self):  # type: ignore[override] - yields wrapped values
        star = _join(self._path, "*")
        self._log.paths.add(star)
        return [(key, _wrap(value, star, self._log)) for key, value in super().items()]


class _RecordingList(list):
    def __init__(self, data: list, path: str, log: _Log) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def __iter__(self):  # type: ignore[override] - yields wrapped values
        star = _join(self._path, "*")
        self._log.paths.add(star)
        return iter([_wrap(value, star, self._log) for value in list.__iter__(self)])


def _schema_paths(schema: dict, root: dict, path: str = "") -> set[str]:
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    paths: set[str] = set()
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []) + schema.get("allOf", []):
        paths |= _schema_paths(branch, root, path)
    for key, sub in schema.get("properties", {}).items():
        paths.add(_join(path, key))
        paths |= _schema_paths(sub, root, _join(path, key))
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), dict):
            paths.add(_join(path, "*"))
            paths |= _schema_paths(schema[key], root, _join(path, "*"))
    return paths


def _branch(schema: dict, part: str, root: dict) -> dict:
    """`schema` ($ref followed), or its oneOf/anyOf branch that names `part` among its properties."""
    for branch in (schema, *schema.get("oneOf", []), *schema.get("anyOf", [])):
        while "$ref" in branch:
            branch = root["$defs"][branch["$ref"].removeprefix("#/$defs/")]
        if part in branch.get("properties", {}):
            return branch
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    return schema


def _normalise(path: str, schema: dict, root: dict) -> str:
    """`path` with the keys of maps (states, products…) written as '*', as the schema enumeration has them."""
    parts = []
    for part in path.split("/"):
        schema = _branch(schema, part, root)
        if part in schema.get("properties", {}):
            schema = schema["properties"][part]
            parts.append(part)
        else:
            schema = schema.get("additionalProperties") or schema.get("items") or {}
            parts.append("*")
    return "/".join(parts)


def _full_city() -> dict:
    """A resolved config that uses every property the schema allows."""
    data = resolve("_virtual", folder_reader(CITY_CONFIGS_DIR)).data
    product = data["products"]["renovation_escrow"]
    product["authority"] = "监管部门"
    product["parameters"] = {}
    product["deadlines"] = {"funding_deadline": {"working_days": 3, "bank_cut_off": True}, "acceptance_window": "P7D"}
    product["fees"] = [
        {
            "name": "固定费",
            "payer": "owner",
            "kind": "fixed",
            "amount_fen": 100,
            "charge_on": "arrival",
            "on_failure": "keep",
        },
        {"name": "比例费", "payer": "owner", "kind": "rate", "bps": 10, "min_fen": 1, "max_fen": 9},
    ]
    product["custody"] = {"min_fen": 1, "max_fen": 2}
    product["approvals"] = [{"operation": "payout", "above_fen": 1, "approvers": 2}]
    product["payer"] = {"designated": True, "wrong_payer": "return"}
    product["form"]["schema"]["properties"]["scope"].update(
        description="帮助", enum=["a"], pattern="^a$", minLength=1, minimum=0, maximum=1
    )
    return data


def test_city_schema_and_loader_agree() -> None:
    schema = json.loads(CITY_SCHEMA.read_text(encoding="utf-8"))
    allowed = _schema_paths(schema, schema) - {"extends"}  # extends is consumed by the resolver
    log = _Log()
    build_city(_RecordingDict(_full_city(), "", log))
    # hashing serialises the whole document: that iteration of the root ('*', '*/…') reads no property
    read = {_normalise(path, schema, schema) for path in log.paths if path.split("/")[0] != "*"}
    assert allowed - read == set(), "the schema allows properties the loader ignores"
    assert read - allowed == set(), "the loader reads properties the schema does not allow"


def test_workflow_schema_and_loader_agree() -> None:
    schema = json.loads(WORKFLOW_SCHEMA.read_text(encoding="utf-8"))
    allowed = _schema_paths(schema, schema)
    log = _Log()
    data = json.loads((WORKFLOWS_DIR / "rent_custody.json").read_text(encoding="utf-8"))
    build_definition(_RecordingDict(data, "", log), build_registry(), "rent_custody.json")
    read = {_normalise(path, schema, schema) for path in log.paths}
    assert allowed - read == set(), "the schema allows properties the loader ignores"
    assert read - allowed == set(), "the loader reads properties the schema does not allow"
