"""Agreement templates to HTML (the on-screen preview) and the same HTML to PDF."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, UndefinedError
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

_LOADER = FileSystemLoader(TEMPLATES_ROOT)


_DIGITS = "零一二三四五六七八九"


def chinese_number(value: int) -> str:
    """1..99 in Chinese numerals, as article numbers are written: 8 -> 八, 10 -> 十, 12 -> 十二, 21 -> 二十一."""
    if not 0 < value < 100:
        raise ValueError(f"article number out of range: {value}")
    tens, units = divmod(value, 10)
    if tens == 0:
        return _DIGITS[units]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[units] if units else "")


def agreement_environment(loader: BaseLoader) -> ImmutableSandboxedEnvironment:
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
    )
    environment.globals.clear()
    environment.globals["cn_number"] = chinese_number
    return environment


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    return agreement_environment(_LOADER)


def _stylesheet(product: str, version: str) -> Markup:
    """The template version's own CSS if it has one, else the shared one (`shared/agreement.css`): trusted
    text from the repository, to inline in a <style> element. A version that must never change its look
    when the shared sheet does keeps a copy of its own."""
    own = f"{product}/{version}/{STYLESHEET_NAME}"
    name = own if (TEMPLATES_ROOT / own).is_file() else f"shared/{STYLESHEET_NAME}"
    source, _, _ = _LOADER.get_source(_environment(), name)
    return Markup(source)


@cache
def template_masked_fields(product: str, version: str) -> frozenset[str]:
    """Which party fields the template version masks: `manifest.json` {"masked": [...]} next to the
    template; without a manifest, every maskable field is masked."""
    path = TEMPLATES_ROOT / product / version / "manifest.json"
    if not path.is_file():
        return MASKABLE
    masked = json.loads(path.read_text(encoding="utf-8")).get("masked")
    if not isinstance(masked, list) or not set(masked) <= MASKABLE:
        raise ConfigError(
            "协议模板清单的 masked 字段无效",
            code="AGREEMENT_MANIFEST_INVALID",
            details={"template": f"{product}/{version}", "allowed": sorted(MASKABLE)},
        )
    return frozenset(masked)


def render_agreement_html(product: str, version: str, context: dict[str, Any]) -> str:
    """Render `<product>/<version>/agreement.html.j2` into a self-contained HTML page (CSS inlined)."""
    seal = seal_markup(str(context.get("platform_name", PLATFORM_NAME)))
    page = {"seal": seal, **context, "inline_css": _stylesheet(product, version)}
    return render_sandboxed(_environment(), f"{product}/{version}/{TEMPLATE_NAME}", page)


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
