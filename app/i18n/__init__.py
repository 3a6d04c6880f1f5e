"""The one string catalogue: Vietnamese by default, English second.

`t("key", name=...)` looks the key up in the current language, falls back to Vietnamese, then
to the key itself (so a missing string is visible, never a crash), and formats `{name}` fields.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
_HERE = Path(__file__).resolve().parent
_current = DEFAULT_LANGUAGE


@cache
def catalogue(language: str) -> dict[str, str]:
    return json.loads((_HERE / f"{language}.json").read_text(encoding="utf-8"))


def set_language(language: str) -> None:
    global _current
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {LANGUAGES}")
    _current = language


def language() -> str:
    return _current


def t(key: str, **kw: object) -> str:
    text = catalogue(_current).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**kw) if kw else text


def has(key: str, language: str = DEFAULT_LANGUAGE) -> bool:
    return key in catalogue(language)
