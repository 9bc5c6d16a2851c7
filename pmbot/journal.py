"""Learnings and reflections (the seed's journal): checked here, before anything is written.

Bad input (an empty title, JSON that is not an object, a text past its bound, a NUL) is an InputError
raised while building the record, so the store never sees it. Registered secrets (the private key in
any of its forms) are redacted from every text: load the settings first so that they are registered.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from pmbot.errors import InputError, redact
from pmbot.store.models import Learning, Reflection

# Bounds: a journal entry is prose and a snippet, not a file dump.
MAX_LABEL = 200  # title, phase, category, impact
MAX_TEXT = 20_000  # description, what worked / failed / next
MAX_CODE = 100_000
MAX_JSON = 20_000


def _text(value: str | None, what: str, bound: int, *, required: bool = False) -> str:
    text = redact((value or "").strip())  # a pasted key is never stored (the journal is shared prose)
    if required and not text:
        raise InputError(f"{what} must not be empty")
    if "\x00" in text:
        raise InputError(f"{what} must not contain NUL characters")
    if len(text) > bound:
        raise InputError(f"{what} is {len(text)} characters; at most {bound}")
    return text


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number")


def json_object(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object from the command line. Fractions are kept as exact text ("3.2"), never floats."""
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_JSON:
        raise InputError(f"{what} is {len(text)} characters of JSON; at most {MAX_JSON}")
    text = redact(text)
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as e:
        raise InputError(f"{what} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise InputError(f'{what} must be a JSON object such as {{"trades": 12}}, got {type(value).__name__}')
    return _exact(value)


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def new_learning(
    *,
    title: str,
    description: str = "",
    phase: str = "",
    category: str = "",
    code_snippet: str = "",
    impact: str = "",
    metadata: str | None = None,
) -> Learning:
    return Learning(
        title=_text(title, "the title", MAX_LABEL, required=True),
        description=_text(description, "--description", MAX_TEXT),
        phase=_text(phase, "--phase", MAX_LABEL),
        category=_text(category, "--category", MAX_LABEL),
        code_snippet=_code(code_snippet),
        impact=_text(impact, "--impact", MAX_LABEL),
        metadata=json_object(metadata, "--metadata"),
    )


def _code(code: str) -> str:
    # Code keeps its indentation: only trailing blank lines go.
    if "\x00" in code:
        raise InputError("the code snippet must not contain NUL characters")
    if len(code) > MAX_CODE:
        raise InputError(f"the code snippet is {len(code)} characters; at most {MAX_CODE}")
    return redact(code.rstrip())


def new_reflection(
    *,
    phase: str,
    what_worked: str = "",
    what_failed: str = "",
    next_improvements: str = "",
    metrics: str | None = None,
) -> Reflection:
    r = Reflection(
        phase=_text(phase, "--phase", MAX_LABEL, required=True),
        what_worked=_text(what_worked, "--worked", MAX_TEXT),
        what_failed=_text(what_failed, "--failed", MAX_TEXT),
        next_improvements=_text(next_improvements, "--next", MAX_TEXT),
        metrics=json_object(metrics, "--metrics"),
    )
    if not (r.what_worked or r.what_failed or r.next_improvements):
        raise InputError("say what worked, what failed or what to improve: --worked, --failed or --next")
    return r


def learning_view(x: Learning) -> dict[str, Any]:
    view = asdict(x)
    return {"id": view.pop("id"), "timestamp": view.pop("timestamp"), **view}


def reflection_view(x: Reflection) -> dict[str, Any]:
    view = asdict(x)
    return {"id": view.pop("id"), "timestamp": view.pop("timestamp"), **view}
