"""Which template files an outbox row is rendered from: the row's language, else
English; and a variant of the row's template when the row names one.

A variant (the row's context key `template_variant`, such as `closing/repair` for the
closing mail of a repair) is a more specific template tried before the row's own in
each language. A firm writes only the variants it wants, in `[mail] templates_dir`, and
every other case keeps the general mail. The language comes first: an Italian customer
whose request type has only an English variant gets the Italian general mail, not an
English one. A variant may leave out its subject (the general one is used) and its HTML
part (the mail is then text only: the general HTML would not match the variant's text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jinja2

__all__ = ["FALLBACK_LANGUAGE", "TemplateChoice", "choose_templates", "is_template_name"]

FALLBACK_LANGUAGE = "en"

# Languages and template names become template paths: keep them to plain names.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
# A variant is one folder and one file name; the file name may be a request type's code.
_VARIANT = re.compile(r"[a-z][a-z0-9_]{0,63}/[a-z0-9][a-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class TemplateChoice:
    language: str   # the language used
    body: str       # "mail/<language>/<name>", whose .txt.j2 (and .html.j2, if any) render
    subject: str    # the .subject.j2 to render: the variant's own, else the template's


def is_template_name(name: str) -> bool:
    return _NAME.match(name) is not None


def choose_templates(env: jinja2.Environment, template: str, language: str,
                     variant: object = None) -> TemplateChoice | None:
    """The files for `template` (a plain name, checked by the caller) in `language` or
    English, its `variant` first in each; None when no text part exists in either."""
    names = [template]
    if isinstance(variant, str) and _VARIANT.match(variant):
        names.insert(0, variant)  # anything else names no file: the general mail goes
    languages = [language] if _NAME.match(language) else []
    languages.append(FALLBACK_LANGUAGE)
    for candidate_language in languages:
        for name in names:
            body = f"mail/{candidate_language}/{name}"
            if not _exists(env, f"{body}.txt.j2"):
                continue
            subject = f"{body}.subject.j2"
            if name != template and not _exists(env, subject):
                subject = f"mail/{candidate_language}/{template}.subject.j2"
            return TemplateChoice(candidate_language, body, subject)
    return None


def _exists(env: jinja2.Environment, path: str) -> bool:
    # Loading is the test: the environment keeps what it loaded for the render after.
    try:
        env.get_template(path)
    except jinja2.TemplateNotFound:
        return False
    return True
