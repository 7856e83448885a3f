"""Fingerprints: keyed (not a bare SHA-256 a log reader can test guesses against), 64 bits, and
the same in every process of a user (``config show`` matches the server's log)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from weightslab.config import fingerprint
from weightslab.config.keys import KEY_BYTES, KEY_FILE, fingerprint_key


def test_fingerprint_is_keyed_and_64_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    fp = fingerprint("short-token")
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fp not in hashlib.sha256(b"short-token").hexdigest()  # not the unsalted hash


def test_the_key_file_is_private_and_shared_by_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    key = fingerprint_key()
    path = tmp_path / KEY_FILE
    assert path.read_bytes() == key and len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code = "from weightslab.config import fingerprint; print(fingerprint('same-secret'))"
    env = {**os.environ, "HOME": str(tmp_path)}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                           check=True).stdout.strip()
    assert other == fingerprint("same-secret")


def test_a_key_file_readable_by_others_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "shared-home"
    path = home / KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"k" * KEY_BYTES)
    path.chmod(0o644)
    monkeypatch.setenv("HOME", str(home))
    assert fingerprint_key() != b"k" * KEY_BYTES
