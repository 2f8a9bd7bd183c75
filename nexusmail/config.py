"""Typed settings: embedded defaults < TOML file < NEXUSMAIL_* environment.

Validated once at start (pydantic), then passed down as frozen models; nothing
imports a global config. Errors name the file, the key and what was expected.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from nexusmail.config_errors import describe_invalid
from nexusmail.i18n import Msg, msg

ENV_PREFIX = "NEXUSMAIL_"
_AUTHSERV_ID = re.compile(r'[^\s;()"]+')
Language = Literal["en", "it", "ro"]


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    data_dir: Path = Path("./nexusmail-data")
    # Empty: SQLite in the data dir. Or postgresql://user@host:port/dbname; its password
    # from database_password_file, libpq's PGPASSWORD or ~/.pgpass, never in this file.
    database_url: str = ""
    database_password_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower()
        if value and scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("use sqlite:///path/to/file.sqlite3 or "
                             "postgresql://user@host:port/dbname")
        if scheme.startswith("postgres") and ":" in value.partition("://")[2].partition(
                "@")[0] and "@" in value:
            raise ValueError("put the password in database_password_file (or PGPASSWORD, "
                             "~/.pgpass), not in the URL: the URL is shown and logged")
        return value


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class BlobsSettings(_Section):
    # Where attachment files live. Empty: data_dir/blobs. A directory path, or
    # s3://bucket/prefix for an S3-compatible object store that several daemons share.
    url: str = ""
    # An S3-compatible server other than AWS (MinIO, Ceph, Garage...): http(s)://host:port.
    endpoint_url: str = ""
    region: str = ""
    # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment, or
    # these two files (one key each, mode 0600), never the keys themselves in this file.
    access_key_id_file: Path | None = None
    secret_access_key_file: Path | None = None
    # Per request to the object store (connect and read each); the client retries thrice.
    timeout_s: float = Field(30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _known_location(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep:
            return value  # a directory
        if scheme.lower() != "s3":
            raise ValueError("use a directory path or s3://bucket/prefix")
        if not _BUCKET.match(rest.partition("/")[0]):
            raise ValueError("the bucket name after s3:// must be 3-63 characters: "
                             "lower-case letters, digits, dots and hyphens")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str) -> str:
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("use http(s)://host:port of the S3-compatible server")
        if "@" in value.partition("://")[2].partition("/")[0]:
            raise ValueError("put the keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                             "the [blobs] key files, not in the URL: the URL is shown")
        return value

    @model_validator(mode="after")
    def _s3_keys_need_s3(self) -> BlobsSettings:
        if not self.url.lower().startswith("s3://"):
            for key in ("endpoint_url", "access_key_id_file", "secret_access_key_file"):
                if getattr(self, key):
                    raise ValueError(f"[blobs] {key} is set but [blobs] url is not "
                                     "s3://bucket/prefix")
        if (self.access_key_id_file is None) != (self.secret_access_key_file is None):
            raise ValueError("set both [blobs] access_key_id_file and secret_access_key_file, "
                             "or neither (then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
        return self


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    protocol: Literal["smtp", "lmtp"] = "smtp"
    hostname: str = "nexusmail.localhost"
    # Sessions at once, in all and from one client address; one more is answered 421.
    # With [limits] max_message_bytes they bound the memory SMTP can take.
    max_connections: int = Field(100, ge=1, le=10_000)
    # Above Postfix's 20 parallel deliveries per destination: behind an MTA every
    # session comes from its one address.
    max_connections_per_ip: int = Field(40, ge=1, le=10_000)
    # Recipients of one transaction (RFC 5321 4.5.3.1.8 asks for at least 100).
    max_recipients: int = Field(100, ge=1, le=10_000)
    # A mail larger than this is written to a file in the data dir while it is received
    # rather than kept in memory; smaller ones (most mail) stay in memory.
    spool_threshold_bytes: int = Field(1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    # Spooled mails handed on (read back, parsed, stored) at once must fit in this
    # together; the others wait their turn on disk, a larger one goes alone. Each takes
    # a few times its size in the daemon at its peak (the bytes, the attachments parsed
    # from them, the store's copy).
    in_flight_data_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Admin page: an operator's login lasts this long, counted from the login.
    session_max_age_s: int = Field(12 * 3600, ge=60)
    # Send the session cookie over HTTPS only; set when a TLS proxy fronts the page.
    secure_cookies: bool = False
    # Failed logins allowed per client address and per account within the window.
    login_failures_per_ip: int = Field(20, ge=1)
    login_failures_per_account: int = Field(5, ge=1)
    login_window_s: int = Field(900, ge=1)
    # GET /metrics without a token (scrapers on the host); false asks for the bearer token.
    metrics_public: bool = True
    # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed;
    # empty: none, the client address is the connection's (else anyone could pick one
    # and slip past the login limit).
    trusted_proxies: tuple[str, ...] = ()
    # The admin page's language for an operator who chose none and whose browser asks
    # for none of en, it, ro.
    default_language: Literal["en", "it", "ro"] = "en"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value


class MailSettings(_Section):
    support_addresses: tuple[str, ...] = ("support@localhost",)
    default_language: Language = "en"
    company_name: str = "Support"
    # A directory whose mail/<lang>/<name>.*.j2 files override the packaged templates.
    templates_dir: Path | None = None
    # Where rejections, "needs attention" and "sender muted" notices go.
    operator_addresses: tuple[str, ...] = ()
    # Acknowledgements one address may receive per hour, against auto-reply ping-pong.
    # Addresses are counted without their +extension (nexusmail.mail.peers).
    max_acks_per_hour: int = Field(10, ge=0)
    # ...per sender domain, and in all: forged senders must not turn us into a source
    # of backscatter. Over a budget the case still opens; only the answer is skipped.
    max_acks_per_hour_per_domain: int = Field(30, ge=0)
    max_acks_per_hour_total: int = Field(300, ge=0)
    # The loop guard: a sender (address without +extension) that opened this many new
    # cases within mute_window_s is muted: its mails that would open a case are kept in
    # the quarantine, unanswered, until an operator unmutes it or it stays quiet for
    # mute_window_s. Likewise a whole domain (robots that change their local part);
    # keep that one high, one busy customer domain must not trip it. 0: never mute.
    mute_after_new_cases: int = Field(5, ge=0)
    mute_domain_after_new_cases: int = Field(40, ge=0)
    mute_window_s: int = Field(600, ge=60, le=7 * 86_400)

    @field_validator("support_addresses", "operator_addresses")
    @classmethod
    def _addresses_look_like_mail(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            local, _, domain = address.partition("@")
            if not local or not domain or " " in address:
                raise ValueError(f"{address!r} is not an email address")
        return tuple(address.lower() for address in value)

    @field_validator("support_addresses")
    @classmethod
    def _at_least_one(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one support address is needed")
        return value


class OutboundSettings(_Section):
    host: str = ""  # empty: write outgoing mail to a Maildir under the data dir
    port: int = Field(25, ge=1, le=65535)
    username: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = False
    implicit_tls: bool = False
    timeout_s: float = Field(30.0, gt=0)
    max_attempts: int = Field(12, ge=1)
    retry_base_s: float = Field(30.0, gt=0)
    retry_max_s: float = Field(3600.0, gt=0)
    poll_interval_s: float = Field(1.0, gt=0)
    # While mail is being accepted, a due mail waits up to this long before it is sent
    # (0: send at once): senders wait on our 250, customers do not count the seconds.
    yield_to_ingest_s: float = Field(5.0, ge=0, le=300)
    # How long a daemon holds the outgoing mails it claimed for sending (renewed every
    # third of it while it sends); a killed daemon's mails go to another after this.
    lease_s: float = Field(60.0, ge=1, le=3600)


class LimitsSettings(_Section):
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_attachments: int = Field(100, ge=0)
    max_subject_chars: int = Field(500, ge=10)
    max_body_chars: int = Field(1_000_000, ge=100)


class IngestSettings(_Section):
    # Worker processes that parse mails on other cores (0: parse in the daemon). Two, so
    # one slow mail never stops the intake of the others.
    parse_processes: int = Field(2, ge=0, le=64)
    # A mail whose parsing takes longer is quarantined with the reason (never lost) and
    # its worker replaced; only with parse_processes above 0.
    parse_timeout_s: float = Field(10.0, gt=0, le=600)


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class RepliesSettings(_Section):
    # HMAC keys for signed reply addresses; the first signs, all verify (rotation).
    # Empty: a key is generated once and kept in the data dir.
    secret_keys: tuple[SecretStr, ...] = ()


class SecuritySettings(_Section):
    # The authserv-id of the firm's own receiving MTA (the first word of the
    # Authentication-Results headers it adds). When it says DMARC failed for a reply's
    # From domain, the reply never changes an assignment. Empty: no such header is read.
    trusted_authserv_id: str = ""

    @field_validator("trusted_authserv_id")
    @classmethod
    def _one_word(cls, value: str) -> str:
        # It is compared with the first word of the header: a value with a space or a
        # ";" could never match, and every DMARC verdict would be silently ignored.
        value = value.strip()
        if value and not _AUTHSERV_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not one word such as mx.firm.it (the first word"
                             " of your MTA's Authentication-Results headers)")
        return value


class TicketsSettings(_Section):
    # A customer's mail on a closed case reopens it (the reopening is on the thread);
    # false: it is kept on the closed case and flagged "mail after close" instead.
    reopen_on_customer_reply: bool = True
    # The reasons an operator picks from when closing or suspending a case on the page
    # (the firm's "causali"). These codes are shown translated; any other text is shown
    # as written, so a firm may list its own words.
    close_reasons: tuple[str, ...] = ("fixed", "replaced", "not_repairable",
                                      "customer_cancelled", "duplicate", "no_answer")
    hold_reasons: tuple[str, ...] = ("waiting_parts", "waiting_customer", "waiting_quote",
                                     "site_not_accessible")


class ReportsSettings(_Section):
    # When every confirmed technician has reported the job done, the customer gets a
    # closing mail with the report and the hours (an intervention's own
    # notify_customer_on_resolve, when set, wins).
    customer_closing_mail: bool = False


class ExportSettings(_Section):
    # Between the columns of CSV exports; Excel in Italy and Romania expects ";" (the
    # comma is their decimal mark).
    csv_delimiter: str = ";"

    @field_validator("csv_delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in "\"\r\n":
            raise ValueError(f"{value!r} is not one character such as ';' or ','")
        return value


class SchedulerSettings(_Section):
    # Schedule dates are calendar dates in the company's time zone (DST never moves them).
    timezone: str = "Europe/Rome"
    interval_s: float = Field(60.0, gt=0)
    # After downtime: "latest" opens every occurrence whose date has not passed plus the
    # most recent past one; "upcoming" only the former; "all" every missed one.
    # Occurrences left out are recorded as skipped and logged, never silently dropped.
    catch_up: Literal["upcoming", "latest", "all"] = "latest"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Rome)") from None
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS_RANGE = re.compile(r"([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


class CalendarSettings(_Section):
    # Business hours (deadlines, reminders) count on these days, within these hours of
    # the company's time zone, skipping the country's public holidays and the closures.
    working_days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    # "08:30-17:30", or a list such as ["08:30-12:30", "14:00-18:00"]; "00:00-24:00" is
    # the whole day. Kept as (start, end) minutes from midnight.
    working_hours: tuple[tuple[int, int], ...] = ((8 * 60 + 30, 17 * 60 + 30),)
    # Public holidays of "IT" or "RO" (from the holidays library), or "" for none.
    country: Literal["IT", "RO", ""] = ""
    # Days the company is closed, e.g. ["2026-12-24", "2026-12-31"].
    closures: tuple[date, ...] = ()
    timezone: str = "Europe/Rome"

    @field_validator("working_days")
    @classmethod
    def _some_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one working day, e.g. [\"mon\", \"tue\"]")
        return tuple(dict.fromkeys(value))

    @field_validator("working_hours", mode="before")
    @classmethod
    def _hour_ranges(cls, value: Any) -> Any:
        ranges = [value] if isinstance(value, str) else value
        if not isinstance(ranges, list | tuple) or not ranges:
            raise ValueError('use "08:30-17:30" or a list of such ranges')
        minutes = []
        for entry in ranges:
            if not isinstance(entry, str):
                minutes.append(tuple(entry))  # already (start, end) minutes
                continue
            match = _HOURS_RANGE.fullmatch(entry.replace(" ", ""))
            if match is None:
                raise ValueError(f"{entry!r} is not a range like \"08:30-17:30\"")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            minutes.append((h1 * 60 + m1, h2 * 60 + m2))
        minutes.sort()
        for start, end in minutes:
            if not 0 <= start < end <= 24 * 60:
                raise ValueError("each range must start before it ends, within 00:00-24:00")
        if any(a[1] > b[0] for a, b in itertools.pairwise(minutes)):
            raise ValueError("the working hour ranges overlap")
        return tuple(minutes)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Rome)") from None
        return value


class SlaSettings(_Section):
    # Defaults for interventions no contract covers, in business hours (fractions
    # allowed); 0: no such deadline.
    response_hours: float = Field(0.0, ge=0)
    resolution_hours: float = Field(0.0, ge=0)
    # A pending assignment with no reply after this many business hours: a reminder to
    # the technician; after escalate_after_hours: the operators are told. 0: off.
    remind_after_hours: float = Field(0.0, ge=0)
    escalate_after_hours: float = Field(0.0, ge=0)
    # The operators are told this many hours before a resolution deadline passes. 0: off.
    warn_before_hours: float = Field(0.0, ge=0)
    # How often the deadline sweep (and the action-sequence sweep, which mails the
    # steps that are due) runs; at most a minute, so a step is never later than that.
    sweep_interval_s: float = Field(60.0, gt=0, le=60)


class ContractsSettings(_Section):
    # The operators are told once when a contract's remaining prepaid hours fall under
    # this; 0: never.
    low_hours_alert: float = Field(0.0, ge=0)


class CustomersSettings(_Section):
    # The operator (email) who owns the customers created for unknown senders; empty: none.
    default_owner: str = ""
    # Free-mail and shared domains beyond the built-in list (gmail, outlook.*, libero...):
    # exact names, or "brand.*" for a brand's country domains. Never names a customer.
    free_mail_domains: tuple[str, ...] = ()

    @field_validator("default_owner")
    @classmethod
    def _owner_is_an_address(cls, value: str) -> str:
        value = value.strip().lower()
        local, _, domain = value.partition("@")
        if value and (not local or "." not in domain or " " in value):
            raise ValueError(f"{value!r} is not an operator's email address")
        return value

    @field_validator("free_mail_domains")
    @classmethod
    def _domains_or_brands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            name = entry.strip().lower().removesuffix(".*")
            if not name or not all(part and all(c.isalnum() or c == "-" for c in part)
                                   for part in name.split(".")):
                raise ValueError(f"{entry!r} is not a domain (gmail.com) or brand (yahoo.*)")
        return tuple(entry.strip().lower() for entry in value)


class ImapAccount(_Section):
    name: str
    host: str
    port: int = Field(993, ge=1, le=65535)
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    username: str
    password: SecretStr = SecretStr("")
    oauth2_token_command: str = ""
    folder: str = "INBOX"
    after: Literal["move", "flag"] = "move"
    move_to: str = "nexusmail/processed"
    # Some servers announce IDLE but never push; false polls every poll_interval_s.
    use_idle: bool = True

    @model_validator(mode="after")
    def _safe_account(self) -> ImapAccount:
        # A password in clear over the network is refused outright (loopback: a local
        # proxy such as a test server or an stunnel end).
        if self.tls == "none" and not _is_loopback(self.host):
            raise ValueError(f'tls = "none" is allowed only for a loopback host, not {self.host!r}'
                             ' (use tls = "implicit" or "starttls")')
        if not self.password.get_secret_value() and not self.oauth2_token_command:
            raise ValueError("password or oauth2_token_command must be set")
        if self.after == "move" and self.move_to == self.folder:
            raise ValueError(f"move_to must differ from folder ({self.folder!r})")
        return self


class ImapSettings(_Section):
    accounts: tuple[ImapAccount, ...] = ()
    # Without IDLE: how often the folder is checked for new mail.
    poll_interval_s: float = Field(60.0, gt=0)
    # IDLE is re-issued before servers drop it (RFC 2177: at most every 29 minutes).
    idle_renew_s: float = Field(25 * 60.0, gt=0, le=29 * 60.0)
    # Every sweep re-selects the folder and reconciles by UID, so nothing relies on IDLE.
    sweep_interval_s: float = Field(300.0, gt=0)
    # Reconnect after network errors: exponential backoff from min to max, +-20% jitter.
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(300.0, gt=0)
    # After a refused login: some providers lock an account retried too often.
    login_retry_s: float = Field(300.0, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    oauth2_command_timeout_s: float = Field(30.0, gt=0)
    # Several daemons on one database: a folder is collected by the one holding its
    # lease, renewed every third of this; a daemon silent for this long is replaced.
    lease_s: float = Field(60.0, ge=1.0)

    @field_validator("accounts")
    @classmethod
    def _unique_names(cls, value: tuple[ImapAccount, ...]) -> tuple[ImapAccount, ...]:
        names = [account.name for account in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"account name {name!r} is used twice")
        return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(_Section):
    storage: StorageSettings = StorageSettings()
    blobs: BlobsSettings = BlobsSettings()
    smtp: SmtpSettings = SmtpSettings()
    web: WebSettings = WebSettings()
    mail: MailSettings = MailSettings()
    outbound: OutboundSettings = OutboundSettings()
    limits: LimitsSettings = LimitsSettings()
    ingest: IngestSettings = IngestSettings()
    log: LogSettings = LogSettings()
    replies: RepliesSettings = RepliesSettings()
    security: SecuritySettings = SecuritySettings()
    tickets: TicketsSettings = TicketsSettings()
    reports: ReportsSettings = ReportsSettings()
    export: ExportSettings = ExportSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    imap: ImapSettings = ImapSettings()
    customers: CustomersSettings = CustomersSettings()
    calendar: CalendarSettings = CalendarSettings()
    sla: SlaSettings = SlaSettings()
    contracts: ContractsSettings = ContractsSettings()

    @model_validator(mode="after")
    def _relay_auth_needs_host(self) -> Settings:
        if self.outbound.username and not self.outbound.host:
            raise ValueError("[outbound] username is set but [outbound] host is empty")
        return self


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, then the TOML file (if any), then NEXUSMAIL_SECTION__KEY variables."""
    source: str | Msg = str(path) if path else msg("embedded defaults")
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(msg("{path}: config file not found", path=str(path))) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(msg("{path}: not valid TOML: {problem}", path=str(path),
                                  problem=str(exc))) from None
    env_keys = _merge_environment(raw, os.environ if environ is None else environ)
    if env_keys:
        source = msg("{source} + environment ({keys})", source=source,
                     keys=", ".join(sorted(env_keys)))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_invalid(source, exc)) from None


def _merge_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Fold NEXUSMAIL_SMTP__PORT=2526 into raw["smtp"]["port"]; values are TOML literals
    when they parse as one (numbers, booleans, lists), plain strings otherwise."""
    used = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        try:
            parsed: Any = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        table = raw.setdefault(section, {})
        if isinstance(table, dict):
            table[key] = parsed
            used.append(name)
    return used
