"""Canned replies: ready texts for the common answers to customers, per language.

They are mail templates like the others (`mail/<language>/canned/<name>.txt.j2`, the
first line the title the operator picks by, the rest the text), so a firm edits or
adds them in `[mail] templates_dir` without touching the code. The chosen one fills
the reply box on the case's page, to be read and changed before sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from nexusmail.config import MailSettings
from nexusmail.dispatch.compose import make_environment

_PREFIX = "mail/{language}/canned/"
_SUFFIX = ".txt.j2"


@dataclass(frozen=True)
class Canned:
    language: str
    name: str
    title: str


class CannedReplies:
    def __init__(self, mail_settings: MailSettings) -> None:
        self.env: jinja2.Environment = make_environment(mail_settings)
        # Read once per settings (a reload builds a new instance): every thread page
        # offers the list, and the files do not change under a running daemon.
        self._available: dict[tuple[str, ...], list[Canned]] = {}

    def available(self, languages: tuple[str, ...]) -> list[Canned]:
        """Every canned reply of `languages`, in that order, by title."""
        if languages not in self._available:
            self._available[languages] = self._read_available(languages)
        return self._available[languages]

    def _read_available(self, languages: tuple[str, ...]) -> list[Canned]:
        found = []
        for language in languages:
            prefix = _PREFIX.format(language=language)
            names = [n for n in self.env.list_templates() if n.startswith(prefix)
                     and n.endswith(_SUFFIX)]
            entries = [Canned(language, n[len(prefix):-len(_SUFFIX)],
                              self._source(n).partition("\n")[0].strip()) for n in names]
            found += sorted(entries, key=lambda c: c.title)
        return found

    def text(self, language: str, name: str, context: dict[str, Any]) -> str | None:
        """The reply's text (title line left out) filled for the case; None if unknown."""
        template_name = f"{_PREFIX.format(language=language)}{name}{_SUFFIX}"
        if "/" in name or ".." in name:
            return None
        try:
            rendered = self.env.get_template(template_name).render(context)
        except jinja2.TemplateNotFound:
            return None
        return rendered.partition("\n")[2].strip() + "\n"

    def _source(self, name: str) -> str:
        loader = self.env.loader
        assert loader is not None
        return loader.get_source(self.env, name)[0]
