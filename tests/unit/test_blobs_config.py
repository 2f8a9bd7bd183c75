"""`[blobs]` settings: where attachments live, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusmail.blobs.open import blobs_location, is_s3, open_blob_store
from nexusmail.config import ConfigError, Settings, load_settings


def settings_from(tmp_path: Path, toml: str) -> Settings:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path.as_posix()}/data"\n' + toml)
    return load_settings(path, environ={})


def test_the_default_is_the_data_dirs_blobs_directory(tmp_path: Path) -> None:
    """No `[blobs]` section: the files stay where they always were, data_dir/blobs."""
    settings = settings_from(tmp_path, "")
    assert not is_s3(settings)
    assert blobs_location(settings) == str(tmp_path / "data" / "blobs")
    assert open_blob_store(settings).describe() == str(tmp_path / "data" / "blobs")


def test_a_directory_url_is_used_as_it_is(tmp_path: Path) -> None:
    """`url` naming a directory puts the blobs there instead."""
    settings = settings_from(tmp_path, f'[blobs]\nurl = "{tmp_path.as_posix()}/shared"\n')
    store = open_blob_store(settings)
    digest = store.put(b"x")
    assert (tmp_path / "shared" / digest[:2] / digest[2:4] / digest).read_bytes() == b"x"


@pytest.mark.parametrize(("toml", "named"), [
    ('url = "ftp://files.firm.lan/x"', "[blobs] url"),
    ('url = "s3://Not_A_Bucket/x"', "[blobs] url"),
    ('url = "s3://bucket-a/x"\nendpoint_url = "minio:9000"', "[blobs] endpoint_url"),
    ('url = "s3://bucket-a/x"\nendpoint_url = "http://key:secret@minio:9000"',
     "[blobs] endpoint_url"),
    ('endpoint_url = "http://minio:9000"', "[blobs] endpoint_url is set"),
    ('url = "s3://bucket-a/x"\naccess_key_id_file = "/k"', "secret_access_key_file"),
    ('url = "s3://bucket-a/x"\ntimeout_s = 0', "[blobs] timeout_s"),
    ('bucket = "x"', "[blobs] bucket: unknown key"),
])
def test_bad_values_name_the_key(tmp_path: Path, toml: str, named: str) -> None:
    """Each wrong `[blobs]` value is refused at load with the key's name in the error,
    and a URL carrying keys is not echoed back."""
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, "[blobs]\n" + toml + "\n")
    assert named in str(caught.value)
    assert "secret" not in str(caught.value).replace("secret_access_key_file", "")


def test_an_unreadable_key_file_names_the_key(tmp_path: Path) -> None:
    """A key file that cannot be read stops the opening with the key's name."""
    (tmp_path / "id").write_text("AKIDEXAMPLE\n")
    settings = settings_from(tmp_path, '[blobs]\nurl = "s3://bucket-a/x"\n'
                             f'access_key_id_file = "{tmp_path.as_posix()}/id"\n'
                             f'secret_access_key_file = "{tmp_path.as_posix()}/none"\n')
    with pytest.raises(ConfigError, match=r"\[blobs\] secret_access_key_file: cannot read"):
        open_blob_store(settings)
