"""What a new deal pins besides its city config: the content hash of its product's declaration, of its bank's
config, of its workflow version, of every file of its agreement template version and the shared partials, and of
every clause (`Deal.definitions`, "kind:name" -> sha256). Its agreement is rendered from exactly these, and it
computes with the bank facts it started with (`app.definitions.banks.pinned_bank`), whatever is published later."""

from __future__ import annotations

from app.definitions.kinds import workflow_name
from app.definitions.store import DefinitionStore
from app.platform.errors import ConfigError

SHARED = "shared"


def pin_key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def deal_pins(
    store: DefinitionStore, product: str, workflow_id: str, workflow_version: int, template: str, bank_code: str
) -> dict[str, str]:
    name = workflow_name(workflow_id, workflow_version)
    workflow = store.published("workflow", name)
    if workflow is None:
        raise ConfigError("工作流未定义", code="UNKNOWN_WORKFLOW", details={"workflow": name})
    pins = {pin_key("workflow", name): workflow.sha256}
    declaration = store.published("product", product)
    if declaration is not None:
        pins[pin_key("product", product)] = declaration.sha256
    bank = store.published("bank", bank_code)
    if bank is not None:
        pins[pin_key("bank", bank_code)] = bank.sha256
    for file, sha256 in store.published_hashes("template").items():
        if file.rpartition("/")[0] in (template, SHARED):
            pins[pin_key("template", file)] = sha256
    for clause, sha256 in store.published_hashes("clause").items():
        pins[pin_key("clause", clause)] = sha256
    return pins
