"""Configuration: defaults, file, environment, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusmail.config import ConfigError, load_settings


def test_embedded_defaults_need_no_file() -> None:
    """With no file and no environment, the documented defaults apply."""
    settings = load_settings(None, environ={})
    assert settings.smtp.host == "127.0.0.1"
    assert settings.smtp.port == 2525
    assert settings.web.port == 8080
    assert settings.mail.support_addresses == ("support@localhost",)
    assert settings.limits.max_message_bytes == 25 * 1024 * 1024
    assert settings.outbound.host == ""


def test_file_then_environment_override(tmp_path: Path) -> None:
    """The TOML file overrides defaults and NEXUSMAIL_SECTION__KEY overrides the file."""
    path = tmp_path / "n.toml"
    path.write_text('[smtp]\nport = 2600\n[mail]\nsupport_addresses = ["Help@Firm.it"]\n')
    settings = load_settings(path, environ={"NEXUSMAIL_SMTP__PORT": "2700"})
    assert settings.smtp.port == 2700
    assert settings.mail.support_addresses == ("help@firm.it",)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[smtp]\nport = "x"\n', "[smtp] port"),
        ("[smtp]\nport = 70000\n", "[smtp] port"),
        ("[smtp]\nprot = 1\n", "[smtp] prot: unknown key"),
        ('[mail]\nsupport_addresses = ["nobody"]\n', "[mail] support_addresses"),
        ('[mail]\ndefault_language = "de"\n', "[mail] default_language"),
        ("[mail\n", "not valid TOML"),
        ('[outbound]\nusername = "u"\n', "[outbound] host is empty"),
        ('[web]\ntrusted_proxies = ["10.0.0.0/33"]\n', "[web] trusted_proxies"),
        ('[security]\ntrusted_authserv_id = "mx.firm.it; dmarc"\n',
         "[security] trusted_authserv_id"),
        ('[customers]\ndefault_owner = "mario"\n', "[customers] default_owner"),
        ('[customers]\nfree_mail_domains = ["my mail.it"]\n', "[customers] free_mail_domains"),
        ('[export]\ncsv_delimiter = ";;"\n', "[export] csv_delimiter"),
        ('[reports]\ncustomer_closing_mail = "maybe"\n', "[reports] customer_closing_mail"),
        ("[sla]\nremind_after_hours = -1\n", "[sla] remind_after_hours"),
        ("[sla]\nsweep_interval_s = 600\n", "[sla] sweep_interval_s"),
        ('[contracts]\nlow_hours_alert = "few"\n', "[contracts] low_hours_alert"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, toml: str, expected: str) -> None:
    """A bad value is reported with the file name and the offending key."""
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """Pointing --config at nothing says so."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_password_is_masked_in_repr(tmp_path: Path) -> None:
    """Secrets never show in a repr (and so never in a log line)."""
    path = tmp_path / "n.toml"
    path.write_text('[outbound]\nhost = "relay"\nusername = "u"\npassword = "hunter2"\n')
    settings = load_settings(path, environ={})
    assert "hunter2" not in repr(settings)
    assert settings.outbound.password.get_secret_value() == "hunter2"


def test_example_config_documents_every_key() -> None:
    """config/nexusmail.example.toml loads, and names every key the settings know."""
    import tomllib

    from nexusmail.config import Settings

    path = Path(__file__).parents[2] / "config" / "nexusmail.example.toml"
    settings = load_settings(path, environ={})
    assert settings == load_settings(None, environ={}), "the example shows the defaults"
    text = path.read_text()
    documented = tomllib.loads(text)
    for section, model in Settings.model_fields.items():
        assert f"[{section}]" in text, section
        assert model.annotation is not None
        for key in model.annotation.model_fields:
            shown = (key in documented.get(section, {}) or f"# {key} =" in text
                     or f"[[{section}.{key}]]" in text)
            assert shown, (section, key)
