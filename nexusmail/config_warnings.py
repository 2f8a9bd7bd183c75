"""Settings that load but will likely misbehave in production: said at start and by
`nexusmail check-config`, never refused (the embedded defaults must keep starting)."""

from __future__ import annotations

from dataclasses import dataclass

from nexusmail.config import MailSettings, Settings
from nexusmail.i18n import Msg, msg

DEFAULT_SUPPORT_ADDRESSES = MailSettings().support_addresses


@dataclass(frozen=True)
class ConfigWarning:
    key: str  # "[section] key", as the config file spells it
    problem: Msg  # translated where an operator reads it (check-config)

    @property
    def message(self) -> str:
        """The problem in English, as the daemon's log says it."""
        return str(self.problem)

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def config_warnings(settings: Settings) -> list[ConfigWarning]:
    """What an administrator should fix before real mail arrives."""
    found: list[ConfigWarning] = []
    behind_mta = settings.smtp.protocol == "lmtp"
    if behind_mta and settings.mail.support_addresses == DEFAULT_SUPPORT_ADDRESSES:
        # LMTP means an MTA hands us the firm's real mail: with the placeholder address
        # every recipient is refused with 550 and the MTA bounces the customer's mail.
        found.append(ConfigWarning(
            "[mail] support_addresses",
            msg("still the default ({addresses}) while [smtp] protocol is \"lmtp\": mail "
                "for the real support address will be refused with 550 and bounced by the "
                "MTA", addresses=", ".join(DEFAULT_SUPPORT_ADDRESSES))))
    if behind_mta and not settings.outbound.host:
        found.append(ConfigWarning(
            "[outbound] host",
            msg("empty while [smtp] protocol is \"lmtp\": acknowledgements and assignment "
                "mails are written to the Maildir in the data dir instead of being sent")))
    found += _sla_warnings(settings)
    found += _cluster_warnings(settings)
    return found


def _cluster_warnings(settings: Settings) -> list[ConfigWarning]:
    # On PostgreSQL other daemons may share the store, each with its own data dir: a
    # key generated there signs reply addresses only this daemon can verify, and a
    # technician's reply that reaches another daemon would not be read as an answer.
    if not settings.storage.database_url.startswith("postgres") or settings.replies.secret_keys:
        return []
    return [ConfigWarning(
        "[replies] secret_keys",
        msg("empty while the store is PostgreSQL: the reply-signing key is generated in this "
            "daemon's data dir; give every daemon sharing the database the same keys, or "
            "replies reaching another daemon are not read as answers"))]


def _sla_warnings(settings: Settings) -> list[ConfigWarning]:
    # An escalation or a warning with nobody to tell is written on the thread only:
    # the point of chasing is lost without a word at start.
    if settings.mail.operator_addresses:
        return []
    return [ConfigWarning(f"[{section}] {key}",
                          msg("is set but [mail] operator_addresses is empty: nobody is"
                              " told, the step is only written on the thread"))
            for section, key, value in (
                ("sla", "escalate_after_hours", settings.sla.escalate_after_hours),
                ("sla", "warn_before_hours", settings.sla.warn_before_hours),
                ("contracts", "low_hours_alert", settings.contracts.low_hours_alert))
            if value > 0]
