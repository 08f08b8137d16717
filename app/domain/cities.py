"""City configuration: resolve a city's `extends` chain, validate it against the schema, build the IR,
pin it by content hash. Semantic checks against workflows, banks and templates: `app.domain.city_checks`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft202012Validator, validators

from app.domain.fees import FeeRule
from app.domain.problems import CityConfigInvalid, Problem, pointer
from app.domain.validation_budget import spend
from app.platform.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "city.schema.json"
FORM_KEYWORDS = ("type", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum")
# `extends` names a config of the store (a city's admin code or a built-in base such as `_virtual`), never a path.
CONFIG_NAME = re.compile(r"^(_[a-z0-9_]+|[0-9]{6})$")
_FILE_STEM = re.compile(r"^[A-Za-z0-9_-]+$")  # a file of the config folder, never a path out of it
MAX_CONFIG_BYTES = 256 * 1024
MAX_CONFIG_DEPTH = 32


@dataclass(frozen=True)
class Tranche:
    """One part of a release plan: a share of the custody amount (`share_bps`), a fixed `amount_fen`, or the
    remainder; released by the workflow event `event` (None: the last of the plan's conditions)."""

    label: str
    share_bps: int = 0
    remainder: bool = False
    amount_fen: int | None = None
    event: str | None = None


@dataclass(frozen=True)
class ReleaseRule:
    conditions: tuple[str, ...]
    tranches: tuple[Tranche, ...]

    def event_of(self, index: int) -> str:
        """The workflow event that releases tranche `index`."""
        return self.tranches[index].event or self.conditions[-1]


@dataclass(frozen=True)
class CustodyLimits:
    min_fen: int | None = None
    max_fen: int | None = None


@dataclass(frozen=True)
class Approval:
    operation: str
    above_fen: int
    approvers: int


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    section: str
    order: int
    required: bool
    help: str = ""
    widget: str | None = None
    schema: dict[str, Any] = field(default_factory=dict)  # the JSON Schema keywords that check the value


@dataclass(frozen=True)
class FormSpec:
    sections: tuple[str, ...]
    fields: tuple[FormField, ...]  # in display order: section order, then x-order

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": [f.name for f in self.fields if f.required],
            "properties": {f.name: f.schema for f in self.fields},
        }


@dataclass(frozen=True)
class PayerRule:
    """Designated payer: only the buyer's own account may pay in; money from anyone else goes to suspense
    and is returned by original route automatically ("return") or after a person looked ("review")."""

    designated: bool = False
    wrong_payer: str = "review"


@dataclass(frozen=True)
class ProductConfig:
    product: str
    workflow_id: str
    workflow_version: int
    banks: tuple[str, ...]
    agreement_template: str
    clauses: tuple[str, ...] = ()
    authority: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    deadlines: dict[str, str | dict[str, Any]] = field(default_factory=dict)  # ISO 8601 or {"working_days": n}
    fees: tuple[FeeRule, ...] = ()
    custody: CustodyLimits = CustodyLimits()
    release: ReleaseRule | None = None
    approvals: tuple[Approval, ...] = ()
    form: FormSpec | None = None
    payer: PayerRule = PayerRule()

    def overrides(self) -> dict[str, Any]:
        """The workflow parameter values this city sets: parameters and deadlines together."""
        return {**self.parameters, **self.deadlines}

    def approvers_required(self, operation: str, amount_fen: int) -> int:
        """How many different people must approve `operation` on `amount_fen` (1 = the initiator alone)."""
        needed = [a.approvers for a in self.approvals if a.operation == operation and amount_fen > a.above_fen]
        return max(needed, default=1)


@dataclass(frozen=True)
class CityConfig:
    admin_code: str
    name: str
    status: str
    products: dict[str, ProductConfig]
    sha256: str
    timezone: str = "Asia/Shanghai"

    def product(self, product: str) -> ProductConfig:
        if product not in self.products:
            raise ConfigError(
                f"{self.name}未开通该业务",
                code="PRODUCT_NOT_OFFERED",
                details={"city": self.admin_code, "product": product},
            )
        return self.products[product]


# --- extends ----------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


@dataclass(frozen=True)
class Layer:
    """One file of an extends chain, leaf first."""

    source: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ResolvedCity:
    data: dict[str, Any]
    layers: tuple[Layer, ...]

    @property
    def source(self) -> str:
        return self.layers[0].source

    def origin(self, path: tuple[Any, ...]) -> str:
        """The file that set the value at `path`: the first layer, leaf first, holding its longest prefix."""
        for length in range(len(path), -1, -1):
            for layer in self.layers:
                if _holds(layer.data, path[:length]):
                    return layer.source
        return self.source


def _holds(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        in_object = isinstance(data, dict) and part in data
        in_array = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_object or in_array):
            return False
        data = data[part]
    return True


Reader = Callable[[str], bytes | None]  # file stem -> raw bytes, None when there is no such file


def folder_reader(folder: Path) -> Reader:
    def read(stem: str) -> bytes | None:
        if _FILE_STEM.fullmatch(stem) is None:
            return None
        path = folder / f"{stem}.json"
        return path.read_bytes() if path.is_file() else None

    return read


class CitySource(Protocol):
    """Where a catalog reads configs from: files, or the published versions in the database."""

    def read(self, stem: str) -> bytes | None: ...

    def stems(self) -> list[str]: ...


@dataclass(frozen=True)
class FolderSource:
    folder: Path

    def read(self, stem: str) -> bytes | None:
        return folder_reader(self.folder)(stem)

    def stems(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.json"))


def _depth(data: Any) -> int:
    """How deeply objects and arrays nest in `data` (iterative: a hostile draft cannot exhaust the stack)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            stack.extend((item, level + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _load_json(raw: bytes, source: str) -> dict[str, Any]:
    def invalid(message: str, message_en: str) -> CityConfigInvalid:
        return CityConfigInvalid(source, [Problem(source, "/", message, message_en)])

    if len(raw) > MAX_CONFIG_BYTES:
        raise invalid(f"配置过大（不能超过 {MAX_CONFIG_BYTES // 1024} KB）", f"larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid("不是合法的 JSON", str(error)) from error
    except RecursionError as error:
        raise invalid(f"嵌套层数过多（不能超过 {MAX_CONFIG_DEPTH} 层）", "nested too deeply") from error
    if _depth(data) > MAX_CONFIG_DEPTH:
        raise invalid(f"嵌套层数过多（不能超过 {MAX_CONFIG_DEPTH} 层）", f"nested deeper than {MAX_CONFIG_DEPTH}")
    if not isinstance(data, dict):
        raise invalid("城市配置须为 JSON 对象", "a city config is an object")
    return data


def _parent(data: dict[str, Any], source: str, leaf: str) -> str | None:
    """The config `data` extends: a name of the store only, never a path (the name is not echoed back)."""
    parent = data.get("extends")
    if parent is None:
        return None
    if not isinstance(parent, str) or CONFIG_NAME.fullmatch(parent) is None:
        message = "继承（extends）只能填写城市代码（6 位行政区划代码）或内置基础配置名（如 _virtual）"
        raise CityConfigInvalid(leaf, [Problem(source, "/extends", message, "extends names a city code only")])
    return parent


def resolve(stem: str, read: Reader) -> ResolvedCity:
    """Read `stem` and the configs it extends; merge them parent first. Cycles and missing parents are errors."""
    layers: list[Layer] = []
    current: str | None = stem
    while current is not None:
        source = f"{current}.json"
        if any(layer.source == source for layer in layers):
            chain = " → ".join([layer.source for layer in layers] + [source])
            raise CityConfigInvalid(
                layers[0].source,
                [Problem(layers[-1].source, "/extends", f"继承形成循环：{chain}", f"extends cycle: {chain}")],
            )
        raw = read(current)
        if raw is None:
            if not layers:
                raise ConfigError("城市未开通", code="UNKNOWN_CITY", details={"city": stem})
            raise CityConfigInvalid(
                layers[0].source,
                [
                    Problem(
                        layers[-1].source, "/extends", f"继承的配置 {source} 不存在", f"parent {source} does not exist"
                    )
                ],
            )
        data = _load_json(raw, source)
        spend()
        layers.append(Layer(source, data))
        current = _parent(data, source, layers[0].source)
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = merge_patch(merged, {key: value for key, value in layer.data.items() if key != "extends"})
    return ResolvedCity(merged, tuple(layers))


# --- schema and IR ----------------------------------------------------------------------------------


@cache
def schema_validator() -> Draft202012Validator:
    # JSON Schema counts 5.0 as an integer; fen, basis points and counts must be true integers.
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=strict_types)
    return strict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_problems(resolved: ResolvedCity) -> list[Problem]:
    problems = []
    for error in schema_validator().iter_errors(resolved.data):
        spend()
        path = tuple(error.absolute_path)
        problems.append(Problem(resolved.origin(path), pointer(*path), "不符合城市配置结构定义", error.message))
    return problems


def _form(spec: Mapping[str, Any]) -> FormSpec:
    sections = tuple(spec["sections"])
    schema = spec["schema"]
    required = set(schema.get("required", []))
    fields = [
        FormField(
            name=name,
            label=item["title"],
            section=item["x-section"],
            order=item["x-order"],
            required=name in required,
            help=item.get("description", ""),
            widget=item.get("x-widget"),
            schema={key: item[key] for key in FORM_KEYWORDS if key in item},
        )
        for name, item in schema["properties"].items()
    ]
    rank = {section: index for index, section in enumerate(sections)}
    fields.sort(key=lambda f: (rank.get(f.section, len(rank)), f.order, f.name))
    return FormSpec(sections, tuple(fields))


def _deadline(value: Any) -> str | dict[str, Any]:
    """An ISO 8601 string as it is; working days as a plain {"working_days", "bank_cut_off"} object."""
    if isinstance(value, str):
        return value
    return {"working_days": value["working_days"], "bank_cut_off": value.get("bank_cut_off", False)}


def _product(name: str, spec: Mapping[str, Any]) -> ProductConfig:
    release = spec.get("release")
    custody = spec.get("custody", {})
    return ProductConfig(
        product=name,
        workflow_id=spec["workflow"]["id"],
        workflow_version=spec["workflow"]["version"],
        banks=tuple(spec["banks"]),
        agreement_template=spec["agreement"]["template"],
        clauses=tuple(spec["agreement"].get("clauses", [])),
        authority=spec.get("authority"),
        parameters=dict(spec.get("parameters", {}).items()),
        deadlines={name: _deadline(value) for name, value in spec.get("deadlines", {}).items()},
        fees=tuple(
            FeeRule(
                fee["name"],
                fee["payer"],
                fee["kind"],
                fee.get("amount_fen"),
                fee.get("bps"),
                fee.get("min_fen"),
                fee.get("max_fen"),
                fee.get("charge_on", "release"),
                fee.get("on_failure", "refund"),
            )
            for fee in spec.get("fees", [])
        ),
        custody=CustodyLimits(custody.get("min_fen"), custody.get("max_fen")),
        release=None
        if release is None
        else ReleaseRule(
            tuple(release["conditions"]),
            tuple(
                Tranche(
                    item["label"],
                    item.get("share_bps", 0),
                    item.get("remainder", False),
                    item.get("amount_fen"),
                    item.get("event"),
                )
                for item in release["tranches"]
            ),
        ),
        approvals=tuple(
            Approval(item["operation"], item["above_fen"], item["approvers"]) for item in spec.get("approvals", [])
        ),
        form=_form(spec["form"]) if "form" in spec else None,
        payer=PayerRule(spec["payer"]["designated"], spec["payer"]["wrong_payer"]) if "payer" in spec else PayerRule(),
    )


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def build_city(data: Mapping[str, Any]) -> CityConfig:
    """The IR of a resolved, schema-valid config."""
    return CityConfig(
        admin_code=data["admin_code"],
        name=data["name"],
        status=data.get("status", "draft"),
        products={name: _product(name, spec) for name, spec in data["products"].items()},
        sha256=hashlib.sha256(canonical_json(data)).hexdigest(),
        timezone=data["timezone"],
    )


class CityCatalog:
    """The city configs in a folder, read on demand (a file edit is seen without a restart).

    With `check` (see `app.domain.city_checks.checker`), every read also runs the semantic checks."""

    def __init__(
        self,
        folder: Path,
        check: Callable[[ResolvedCity, CityConfig], list[Problem]] | None = None,
        source: CitySource | None = None,
        launches: Callable[[], Mapping[str, bool]] | None = None,
    ) -> None:
        self.folder = folder
        self.check = check
        self.source: CitySource = source or FolderSource(folder)
        self.launches = launches

    def resolve(self, stem: str) -> ResolvedCity:
        return resolve(stem, self.source.read)

    def get(self, admin_code: str) -> CityConfig:
        return self.get_resolved(admin_code)[1]

    def get_resolved(self, admin_code: str) -> tuple[ResolvedCity, CityConfig]:
        """A real city (not the virtual one) with the resolved data it was built from (deals pin both)."""
        if not admin_code.isdigit():
            raise ConfigError("城市未开通", code="UNKNOWN_CITY", details={"city": admin_code})
        return self.load_resolved(admin_code)

    def load(self, stem: str) -> CityConfig:
        """Any config of the source, the virtual city included; CityConfigInvalid lists every problem."""
        return self.load_resolved(stem)[1]

    def load_resolved(self, stem: str) -> tuple[ResolvedCity, CityConfig]:
        resolved = self.resolve(stem)
        problems = schema_problems(resolved)
        if problems:
            raise CityConfigInvalid(resolved.source, problems)
        spend()
        city = build_city(resolved.data)
        spend()
        problems = self.check(resolved, city) if self.check else []
        if problems:
            raise CityConfigInvalid(resolved.source, problems)
        return resolved, city

    def live_cities(self) -> list[CityConfig]:
        """The cities agents see: those put live by the review flow's 上线 step (`launches`: city → live); a city
        the flow never launched or took offline is live when its config's `status` says so (the shipped files)."""
        launched = self.launches() if self.launches is not None else {}
        cities = [self.get(stem) for stem in self.source.stems() if stem.isdigit()]
        return [city for city in cities if launched.get(city.admin_code, city.status == "live")]
