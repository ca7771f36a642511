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
