"""The paper's prompt for seq2seq query generators: ``Generate a {Language} question for this passage: ...``."""
from __future__ import annotations

from .errors import ConfigError
from .languages import LANGUAGES, supported

PROMPT = "Generate a {language} question for this passage: {title} {passage}"


def language_name(lang: str) -> str:
    """The English name of ``lang`` in the prompt (``xaug.languages``)."""
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise ConfigError(f"languages: no known name for language code {lang!r} to use in the prompt "
                          f"(known: {supported()})")
    return LANGUAGES[lang].name


def make_prompt(lang: str, title: str, passage: str) -> str:
    """The paper's input, exactly: ``Generate a {Language} question for this passage: {title} {passage}``."""
    return PROMPT.format(language=language_name(lang), title=title, passage=passage)
