"""Agreement templates to HTML (the on-screen preview) and the same HTML to PDF."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    BytecodeCache,
    FunctionLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    UndefinedError,
)
from jinja2.bccache import Bucket
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from app.domain.agreement import MASKABLE, PLATFORM_NAME
from app.pdf.fonts import ensure_harfbuzz_subset
from app.pdf.seal import seal_markup
from app.platform.errors import AgreementTemplateError, ConfigError
from app.platform.histogram import Histogram

TEMPLATES_ROOT = Path(__file__).resolve().parent.parent.parent / "agreement_templates"
TEMPLATE_NAME = "agreement.html.j2"
STYLESHEET_NAME = "agreement.css"
MANIFEST_NAME = "manifest.json"
DEFAULT_CLAUSES = ("confidentiality", "dispute")  # what a template prints when the city chose no clauses

# template name ("resale_escrow/v1/agreement.html.j2", "clauses/dispute.html.j2") -> its source, None if none:
# the published definitions a deal pinned (app.agreements.sources), or the repository's files
Sources = Callable[[str], str | None]


def repository_source(name: str) -> str | None:
    path = TEMPLATES_ROOT / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


class _CompiledInMemory(BytecodeCache):
    """Compiled templates shared by every render's environment, checked against their source (Jinja keys a
    bucket by name and compares the source's checksum): a clause is compiled once per text, not per render."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledInMemory()


_DIGITS = "零一二三四五六七八九"


def chinese_number(value: int) -> str:
    """1..99 in Chinese numerals, as article numbers are written: 8 -> 八, 10 -> 十, 12 -> 十二, 21 -> 二十一."""
    if not 0 < value < 100:
        raise ValueError(f"article number out of range: {value}")
    tens, units = divmod(value, 10)
    if tens == 0:
        return _DIGITS[units]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[units] if units else "")


def agreement_environment(
    loader: BaseLoader, bytecode_cache: BytecodeCache | None = None
) -> ImmutableSandboxedEnvironment:
    """Templates and clauses are edited by people, not programmers: they run sandboxed (no attribute that
    starts with an underscore, no method that changes a value), see only the deal's data they are given and
    the one function defined here; Jinja's own globals (range, dict, cycler, joiner, namespace, lipsum) are
    removed."""
    environment = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=bytecode_cache,
    )
    environment.globals.clear()
    environment.globals["cn_number"] = chinese_number
    return environment


def _environment(source: Sources) -> ImmutableSandboxedEnvironment:
    return agreement_environment(FunctionLoader(source), _COMPILED)


def _stylesheet(product: str, version: str, source: Sources) -> Markup:
    """The template version's own CSS if it has one, else the shared one (`shared/agreement.css`): reviewed text
    (its check refuses "</"), inlined in a <style> element. A version that must never change its look when
    the shared sheet does keeps a copy of its own."""
    own = source(f"{product}/{version}/{STYLESHEET_NAME}")
    shared = source(f"shared/{STYLESHEET_NAME}")
    return Markup(own if own is not None else shared or "")


def manifest_problem(content: str) -> str | None:
    """What is wrong with a template's `manifest.json` ({"masked": [...]}), in Chinese; None when nothing."""
    try:
        masked = json.loads(content).get("masked")
    except (ValueError, AttributeError):
        return "协议模板清单须为 JSON 对象"
    if not isinstance(masked, list) or not set(masked) <= MASKABLE:
        return f"协议模板清单的 masked 字段无效（可选：{'、'.join(sorted(MASKABLE))}）"
    return None


def template_masked_fields(product: str, version: str, source: Sources = repository_source) -> frozenset[str]:
    """Which party fields the template version masks: `manifest.json` {"masked": [...]} next to the
    template; without a manifest, every maskable field is masked."""
    content = source(f"{product}/{version}/{MANIFEST_NAME}")
    if content is None:
        return MASKABLE
    problem = manifest_problem(content)
    if problem is not None:
        raise ConfigError(
            problem,
            code="AGREEMENT_MANIFEST_INVALID",
            details={"template": f"{product}/{version}", "allowed": sorted(MASKABLE)},
        )
    return frozenset(json.loads(content)["masked"])


def render_agreement_html(
    product: str, version: str, context: dict[str, Any], source: Sources = repository_source
) -> str:
    """Render `<product>/<version>/agreement.html.j2` into a self-contained HTML page (CSS inlined), every
    template, partial and clause read from `source`."""
    seal = seal_markup(str(context.get("platform_name", PLATFORM_NAME)))
    page = {"seal": seal, **context, "inline_css": _stylesheet(product, version, source)}
    return render_sandboxed(_environment(source), f"{product}/{version}/{TEMPLATE_NAME}", page)


def render_sandboxed(environment: ImmutableSandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
    """Render template `name` with `context` (plain values only); every template problem is a Chinese error:
    refused by the sandbox, not parsing or naming data the context lacks (AgreementTemplateError, 422), or a
    template that does not exist (ConfigError)."""
    try:
        return environment.get_template(name).render(context)
    except SecurityError as exc:
        raise AgreementTemplateError(
            "协议模板或条款含有不允许的写法（只能使用存管单的数据），请联系运营修改模板或条款",
            code="AGREEMENT_TEMPLATE_UNSAFE",
            details={"template": name, "error": str(exc)},
        ) from exc
    except TemplateNotFound as exc:
        raise ConfigError(
            "协议模板不存在，请检查城市配置中的协议模板版本",
            code="AGREEMENT_TEMPLATE_NOT_FOUND",
            details={"template": name},
        ) from exc
    except UndefinedError as exc:
        raise AgreementTemplateError(
            "协议模板或条款引用了存管单没有的数据，不能生成协议",
            code="AGREEMENT_CONTEXT_INCOMPLETE",
            details={"template": name, "error": str(exc)},
        ) from exc
    except TemplateError as exc:
        raise AgreementTemplateError(
            "协议模板或条款有语法错误，不能生成协议，请联系运营修改模板或条款",
            code="AGREEMENT_TEMPLATE_INVALID",
            details={"template": name, "error": str(exc)},
        ) from exc


# Pango/fontconfig and fontTools are not safe to use from several threads at once: a web process running
# threads (gunicorn gthread) renders one agreement at a time; processes still render side by side
_RENDERING = threading.Lock()


PDF_RENDER_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
PDF_RENDER_SECONDS = Histogram(PDF_RENDER_BUCKETS_S)  # this process's renders, read by /metrics


@contextmanager
def pdf_render_timer() -> Iterator[None]:
    """Time one HTML → PDF render into PDF_RENDER_SECONDS (failed renders too: they cost the same)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PDF_RENDER_SECONDS.observe(time.perf_counter() - started)


def html_to_pdf(html: str) -> bytes:
    """Lay out the agreement HTML as an A4 PDF with subset, embedded CJK fonts (timed for /metrics)."""
    with pdf_render_timer():
        ensure_harfbuzz_subset()
        from weasyprint import HTML  # imported here: loading Pango and fonts is slow and only PDF rendering needs it

        with _RENDERING:
            return HTML(string=html, base_url=str(TEMPLATES_ROOT)).write_pdf()
