"""Files are written whole or not at all."""

from __future__ import annotations

import os

import pytest

from valohai_cfn import files


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "params.json"
    target.write_text("old")

    def fails(_source, _destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fails)
    with pytest.raises(OSError):
        files.write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["params.json"]


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "t.json"
    files.write_atomically(target, "one")
    files.write_atomically(target, "two")
    assert target.read_text() == "two" and os.listdir(target.parent) == ["t.json"]


def test_a_new_file_gets_the_permissions_the_umask_gives(tmp_path):
    """Not tempfile's 0600: a template or parameter file is as readable as any file the user makes."""
    previous = os.umask(0o027)
    try:
        files.write_atomically(tmp_path / "t.json", "x")
        assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o640
        os.umask(0o022)
        files.write_atomically(tmp_path / "u.json", "x")
        assert (tmp_path / "u.json").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "params.json"
    target.write_text("old")
    target.chmod(0o600)
    files.write_atomically(target, "new")
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "new"


def test_a_name_taken_by_another_writer_is_not_used(tmp_path, monkeypatch):
    """The temporary name is random and made only if free: a second writer never writes into the first's."""
    names = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(files.os, "urandom", lambda _n: next(names))
    (tmp_path / f".t.json.{'00' * 6}.partial").write_text("another writer's")
    files.write_atomically(tmp_path / "t.json", "mine")
    assert (tmp_path / "t.json").read_text() == "mine"
    assert (tmp_path / f".t.json.{'00' * 6}.partial").read_text() == "another writer's"


def test_a_target_that_cannot_be_statted_is_replaced_and_leaves_no_temporary_file(tmp_path):
    """QA (#21): the target's permissions were read after the temporary file was made, outside the try that
    removes it: any error there but FileNotFoundError (a symlink loop: ELOOP; a link through a file: ENOTDIR;
    no search permission: EACCES) left the .partial file, and the write failed where it used to replace the link."""
    target = tmp_path / "valohai-self-hosted.json"
    target.symlink_to(target.name)  # a link to itself: os.stat raises ELOOP
    files.write_atomically(target, "new")
    assert sorted(os.listdir(tmp_path)) == [target.name]
    assert target.read_text() == "new"


def test_ctrl_c_while_the_temporary_file_is_prepared_leaves_no_temporary_file(tmp_path, monkeypatch):
    """QA (#21): a Ctrl-C in os.chmod (after the O_EXCL create) left the .partial file."""
    target = tmp_path / "t.json"
    target.write_text("old")

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "chmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomically(target, "new")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["t.json"]
    assert target.read_text() == "old"
