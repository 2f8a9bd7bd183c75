"""Which customer a sender's mail domain points to, and which domains point to nobody.

A firm's customers write from their own domain (`mario@rossi-srl.it`, or a mail host
below it, `mario@mail.rossi-srl.it`); a new person at a known domain is a new contact of
that customer. Free-mail and shared domains (gmail, outlook, libero, aruba's certified
mail...) are written from by millions of unrelated people: a domain there says nothing
about who the sender works for, so it never names a customer, even when an operator
typed it as one customer's domain by mistake.

Pure: domains in, decisions out. The store asks `lookup_domains` for the few names to
look up with one indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# Exact free-mail and shared domains; a subdomain of one is free too (pec.libero.it).
_FREE_EXACT = frozenset({
    # international
    "gmail.com", "googlemail.com", "msn.com", "passport.com", "ymail.com",
    "rocketmail.com", "aol.com", "aim.com", "icloud.com", "me.com", "mac.com",
    "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com",
    "tutanota.de", "tuta.io", "tuta.com", "mail.com", "email.com", "zoho.com",
    "zohomail.com", "yandex.com", "yandex.ru", "mail.ru", "web.de", "t-online.de",
    "fastmail.com", "hushmail.com", "qq.com", "163.com", "126.com",
    # Italy: consumer mail of the big providers and ISPs
    "libero.it", "virgilio.it", "tiscali.it", "tiscalinet.it", "alice.it", "tin.it",
    "tim.it", "inwind.it", "iol.it", "blu.it", "email.it", "fastwebnet.it", "katamail.com",
    "postemail.it", "jumpy.it", "supereva.it", "teletu.it", "infinito.it", "vodafone.it",
    # Italy: shared certified-mail (PEC) and hosting domains, Aruba's first of all
    "aruba.it", "pec.it", "arubapec.it", "pec.aruba.it", "legalmail.it", "postacert.it",
    "pec.libero.it", "pecimprese.it", "registerpec.it", "sicurezzapostale.it",
    "cert.legalmail.it", "pec.register.it", "mypec.eu",
    # Romania
    "rdslink.ro", "clicknet.ro", "k.ro", "home.ro",
})  # fmt: skip
# Brands that run free mail under many country domains: outlook.com, outlook.it,
# hotmail.co.uk, yahoo.ro, gmx.de, live.it...; written "brand.*" in the config.
_FREE_BRANDS = frozenset({"outlook", "hotmail", "live", "windowslive", "yahoo", "gmx",
                          "yandex"})
# The second-level labels countries put between a brand and the country code
# (yahoo.co.uk, hotmail.com.br): "brand.*" covers them, and only them, so a customer's
# `live.rossi-srl.it` is not mistaken for Microsoft's `live.it`.
_COUNTRY_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ne", "or"})
# A sender domain with more labels than this is not split further (a.b.c.d.e.rossi.it
# still finds rossi.it; hundreds of labels would only make the lookup long).
MAX_LOOKUP_LABELS = 8


def normalize_domain(value: str) -> str:
    """Lower case, no surrounding dots or space, the part after "@" of an address."""
    domain = value.strip().rpartition("@")[2]
    return domain.strip().strip(".").lower()


def domain_of(address: str) -> str:
    """The domain of a mail address ("" when it has none)."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    return normalize_domain(domain) if at and local else ""


@dataclass(frozen=True)
class FreeMail:
    """The free-mail and shared domains: the built-in list plus the configured ones
    (`[customers] free_mail_domains`, exact names or "brand.*")."""

    exact: frozenset[str] = _FREE_EXACT
    brands: frozenset[str] = _FREE_BRANDS

    @classmethod
    def with_extra(cls, extra: Iterable[str]) -> FreeMail:
        exact, brands = set(_FREE_EXACT), set(_FREE_BRANDS)
        for entry in extra:
            name = normalize_domain(entry)
            if name.endswith(".*"):
                brands.add(name[:-2])
            elif name:
                exact.add(name)
        return cls(frozenset(exact), frozenset(brands))

    def is_free(self, domain: str) -> bool:
        """True for a free-mail or shared domain or any host below one."""
        labels = normalize_domain(domain).split(".")
        for start in range(len(labels) - 1):
            suffix = labels[start:]
            if ".".join(suffix) in self.exact or self._is_brand(suffix):
                return True
        return False

    def _is_brand(self, labels: list[str]) -> bool:
        """brand.cc or brand.co.cc (two-letter country, known second level)."""
        if labels[0] not in self.brands:
            return False
        rest = labels[1:]
        return len(rest) == 1 or (
            len(rest) == 2 and rest[0] in _COUNTRY_SECOND_LEVEL and len(rest[1]) == 2)


@lru_cache(maxsize=8)
def free_mail_with(extra: tuple[str, ...]) -> FreeMail:
    """The list for a configuration's extra domains, built once per distinct setting."""
    return FreeMail.with_extra(extra)


def is_valid_domain(value: str) -> bool:
    """A domain a customer can own: at least two labels of letters, digits and "-"."""
    labels = normalize_domain(value).split(".")
    return len(labels) >= 2 and all(
        label and len(label) <= 63 and not label.startswith("-") and not label.endswith("-")
        and all(ch.isalnum() or ch == "-" for ch in label)
        for label in labels)


def lookup_domains(sender_domain: str, free_mail: FreeMail) -> tuple[str, ...]:
    """The customer domains a sender at `sender_domain` may belong to, the most specific
    first (mail.rossi-srl.it, rossi-srl.it); empty for free mail, where the domain says
    nothing. A bare top-level domain ("it") is never one."""
    domain = normalize_domain(sender_domain)
    if not is_valid_domain(domain) or free_mail.is_free(domain):
        return ()
    labels = domain.split(".")[-MAX_LOOKUP_LABELS:]
    return tuple(".".join(labels[start:]) for start in range(len(labels) - 1))


def domain_matches(sender_domain: str, customer_domain: str, free_mail: FreeMail) -> bool:
    """True when mail from `sender_domain` belongs to the customer owning
    `customer_domain`: the same domain or a host below it, never for free mail."""
    wanted = normalize_domain(customer_domain)
    return not free_mail.is_free(wanted) and wanted in lookup_domains(sender_domain,
                                                                       free_mail)
