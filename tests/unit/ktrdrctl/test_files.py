"""``ktrdrctl.files.read_text``: regular files only, at most MAX_FILE_BYTES, without ever blocking.

The special files are real (a FIFO made with mkfifo, /dev/zero, /dev/null, a directory, a unix
socket); a FIFO nobody writes to would block a plain ``open`` forever, so the read runs in a thread
that the test joins with a timeout.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from ktrdrctl.files import MAX_FILE_BYTES, FileProblem, read_text


def problem_of(name: str | Path) -> str:
    """The message of the FileProblem ``read_text(name)`` raises; fails if it blocks for 10 s."""
    outcome: list[BaseException | str] = []

    def attempt() -> None:
        try:
            outcome.append(read_text(str(name)))
        except BaseException as e:  # reported to the test below
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    assert outcome, f"read_text({name}) blocked"
    assert isinstance(outcome[0], FileProblem), outcome[0]
    return str(outcome[0])


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert problem_of(fifo) == f"cannot read {fifo}: it is a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused(device: str) -> None:
    assert problem_of(device) == f"cannot read {device}: it is a character device, not a regular file"


def test_a_directory_and_a_socket_are_refused(tmp_path: Path) -> None:
    assert problem_of(tmp_path) == f"cannot read {tmp_path}: it is a directory, not a regular file"
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        # A socket cannot be opened at all (ENXIO); the message says why.
        assert problem_of(path).startswith(f"cannot read {path}: ")


def test_a_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    message = problem_of(big)
    assert message == f"cannot read {big}: larger than the limit of {MAX_FILE_BYTES:,} bytes"


def test_a_file_of_exactly_the_cap_is_read(tmp_path: Path) -> None:
    exact = tmp_path / "exact.yaml"
    exact.write_text("#" * (MAX_FILE_BYTES - 1) + "\n")
    assert len(read_text(str(exact))) == MAX_FILE_BYTES


def test_missing_unreadable_and_not_utf8(tmp_path: Path) -> None:
    assert (
        problem_of(tmp_path / "nope.yaml")
        == f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory"
    )
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    assert problem_of(latin) == f"cannot read {latin}: not UTF-8 text (invalid continuation byte at byte 9)"


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "s.yaml"
    target.write_text("name: x\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert read_text(str(link)) == "name: x\n"
