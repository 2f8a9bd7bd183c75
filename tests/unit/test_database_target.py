"""[storage] database_url: which store it names, and no password where it would show."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusmail.config import ConfigError, Settings, load_settings
from nexusmail.storage.target import database_target


def _settings(tmp_path: Path, toml: str) -> Settings:
    path = tmp_path / "nm.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(path, environ={})


def test_default_and_sqlite_urls_name_a_file(tmp_path: Path) -> None:
    """No URL: the SQLite file in the data dir; sqlite:/// relative, sqlite://// absolute."""
    default = database_target(_settings(tmp_path, f'[storage]\ndata_dir = "{tmp_path}"\n'))
    assert (default.dialect, default.sqlite_path) == ("sqlite", tmp_path / "nexusmail.sqlite3")
    relative = database_target(_settings(
        tmp_path, '[storage]\ndatabase_url = "sqlite:///data/nm.sqlite3"\n'))
    assert relative.sqlite_path == Path("data/nm.sqlite3")
    absolute = database_target(_settings(
        tmp_path, '[storage]\ndatabase_url = "sqlite:////var/lib/nm.sqlite3"\n'))
    assert absolute.sqlite_path == Path("/var/lib/nm.sqlite3")


def test_postgresql_password_comes_from_its_file_and_never_shows(tmp_path: Path) -> None:
    """The password file is read, kept out of the URL and out of repr."""
    secret = tmp_path / "db-password"
    secret.write_text("s3cret-pw\n", encoding="utf-8")
    target = database_target(_settings(tmp_path, (
        '[storage]\ndatabase_url = "postgresql://nm@db.firm.lan:5432/nm"\n'
        f'database_password_file = "{secret}"\n')))
    assert (target.dialect, target.password) == ("postgresql", "s3cret-pw")
    assert "s3cret" not in target.describe()
    assert "s3cret" not in repr(target)


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql://nm:s3cret@db/nm", "not in the URL"),
    ("mysql://db/nm", "postgresql://"),
])
def test_bad_urls_name_the_key(tmp_path: Path, url: str, said: str) -> None:
    """A password inside the URL or an unknown database is refused, naming the key."""
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, f'[storage]\ndatabase_url = "{url}"\n')
    assert "[storage] database_url" in str(caught.value)
    assert said in str(caught.value)
    assert "s3cret" not in str(caught.value)
