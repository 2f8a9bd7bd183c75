"""Which customer a sender's mail domain points to: own domains and hosts below them do,
free-mail and shared domains never do, whatever the case of the letters."""

from __future__ import annotations

import pytest

from nexusmail.tickets.mail_domains import (
    FreeMail,
    domain_matches,
    domain_of,
    is_valid_domain,
    lookup_domains,
)

BUILT_IN = FreeMail()


@pytest.mark.parametrize(
    "domain",
    [
        "gmail.com", "googlemail.com", "GMAIL.COM", "outlook.com", "outlook.it",
        "hotmail.it", "hotmail.co.uk", "live.com", "live.it", "msn.com", "yahoo.com",
        "yahoo.it", "yahoo.ro", "yahoo.co.uk", "yahoo.com.br", "libero.it", "virgilio.it",
        "tiscali.it", "alice.it", "tin.it", "pec.it", "arubapec.it", "icloud.com",
        "me.com", "gmx.de", "gmx.net", "email.it", "fastwebnet.it", "proton.me",
        "protonmail.com", "pec.libero.it", "mail.gmail.com", "gmail.com.", " Libero.IT ",
    ],
)
def test_free_mail_domains(domain: str) -> None:
    """The built-in list knows the free-mail and shared domains our users' customers
    write from, and hosts below them, in any case."""
    assert BUILT_IN.is_free(domain)
    assert lookup_domains(domain, BUILT_IN) == ()


@pytest.mark.parametrize(
    "domain",
    ["rossi-srl.it", "live.rossi-srl.it", "outlook.rossi-srl.it", "yahoo.rossi.co.it",
     "gmail.com.evil.example", "libero-impianti.it", "mygmail.com", "termo.ro"],
)
def test_own_domains_are_not_free_mail(domain: str) -> None:
    """A firm's own domain is not free mail, even with a free-mail brand as a label of it
    or a free-mail name as part of a label."""
    assert not BUILT_IN.is_free(domain)
    assert lookup_domains(domain, BUILT_IN) != ()


@pytest.mark.parametrize(
    ("sender", "customer", "matches"),
    [
        ("rossi-srl.it", "rossi-srl.it", True),
        ("mail.rossi-srl.it", "rossi-srl.it", True),
        ("a.b.mail.rossi-srl.it", "rossi-srl.it", True),
        ("ROSSI-SRL.IT", "rossi-srl.it", True),
        ("rossi-srl.it", "Rossi-SRL.it", True),
        ("rossi-srl.it", "mail.rossi-srl.it", False),
        ("notrossi-srl.it", "rossi-srl.it", False),
        ("rossi-srl.it.evil.example", "rossi-srl.it", False),
        ("rossi-srl.com", "rossi-srl.it", False),
        ("gmail.com", "gmail.com", False),
        ("pec.libero.it", "libero.it", False),
        ("it", "it", False),
        ("", "rossi-srl.it", False),
    ],
)
def test_domain_matches(sender: str, customer: str, matches: bool) -> None:
    """A sender belongs to the customer whose domain it is or lies below, never through
    a free-mail domain, a look-alike, a parent or a bare top-level domain."""
    assert domain_matches(sender, customer, BUILT_IN) is matches


def test_lookup_domains_most_specific_first() -> None:
    """The names to look up run from the sender's own host to its registered domain,
    never the bare top-level domain."""
    assert lookup_domains("Mail.Rossi-Srl.IT", BUILT_IN) == (
        "mail.rossi-srl.it", "rossi-srl.it")


def test_lookup_domains_are_few_for_a_long_host() -> None:
    """A host of hundreds of labels costs a handful of names, the parent domains kept."""
    names = lookup_domains("x." * 300 + "rossi-srl.it", BUILT_IN)
    assert len(names) < 10
    assert names[-1] == "rossi-srl.it"


def test_configured_domains_extend_the_list() -> None:
    """[customers] free_mail_domains adds exact domains and "brand.*" names to the
    built-in list, which stays."""
    free = FreeMail.with_extra(["Posta.Example.it", "freemailer.*"])
    assert free.is_free("posta.example.it")
    assert free.is_free("smtp.posta.example.it")
    assert free.is_free("freemailer.de")
    assert free.is_free("freemailer.co.uk")
    assert free.is_free("gmail.com")
    assert not free.is_free("example.it")
    assert not BUILT_IN.is_free("posta.example.it")


@pytest.mark.parametrize(
    ("address", "domain"),
    [("Mario@Rossi-SRL.it", "rossi-srl.it"), ("<a@b.it>", "b.it"), ("nobody", ""),
     ("@b.it", ""), ('"a@b"@c.it', "c.it")],
)
def test_domain_of(address: str, domain: str) -> None:
    """The domain of an address is what follows its last "@", lower case."""
    assert domain_of(address) == domain


@pytest.mark.parametrize(
    ("value", "valid"),
    [("rossi-srl.it", True), ("xn--caff-dma.it", True), ("rossi srl.it", False),
     ("it", False), ("-rossi.it", False), ("rossi..it", False), ("a@b.it", True)],
)
def test_is_valid_domain(value: str, valid: bool) -> None:
    """A customer's domain is two or more labels of letters, digits and inner dashes."""
    assert is_valid_domain(value) is valid
