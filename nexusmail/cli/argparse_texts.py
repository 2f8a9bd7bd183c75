"""argparse's own error messages (a missing argument, a bad choice), held in our
catalogues so that a mistyped command is answered in the operator's language.

argparse words them through gettext's default domain, "messages", the name our
catalogues also have: main() binds that domain to them. gettext then picks the language
from the locale itself (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), which is the only source
there is before the configuration is read. The --help texts are not listed: the
commands' descriptions and examples stay English, and a help page half translated
reads worse than one in English.
"""

from __future__ import annotations

from importlib import resources

from nexusmail.i18n import N_

GETTEXT_DOMAIN = "messages"

# As Python 3.11's argparse writes them (the placeholders are argparse's own).
ARGPARSE_ERRORS = (
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("ignored explicit argument %r"),
    N_("can't open '%(filename)s': %(error)s"),
)


def catalogues_dir() -> str:
    """Where the compiled catalogues are, for gettext.bindtextdomain."""
    return str(resources.files("nexusmail") / "locale")
