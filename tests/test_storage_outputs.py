"""Outputs that cannot be written are refused before the work, in one line naming the path and the cause; a
write that fails (a full disk, for real: a tiny tmpfs) leaves nothing behind."""

import errno
import os
import subprocess
import uuid

import pytest

from sse_dist import storage


def _mount(folder, options):
    """Mount a tmpfs; non-zero if this machine does not let us (not root, or no CAP_SYS_ADMIN)."""
    cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    return subprocess.run(cmd, capture_output=True).returncode


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs (needs root to mount; skipped otherwise)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if _mount(mnt, "size=256k"):
        pytest.skip("cannot mount a tmpfs here (needs root): the full-disk case is not run")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def _fill(folder):
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_file_where_a_folder_is_expected(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(storage.StorageError, match=r"out: exists and is not a folder"):
        storage.check_output(str(tmp_path / "out"), folder=True)
    with pytest.raises(storage.StorageError, match=r"cannot be created: .*out is a file"):
        storage.check_output(str(tmp_path / "out" / "run"), folder=True)


def test_a_folder_where_a_file_is_expected(tmp_path):
    (tmp_path / "emb.npz").mkdir()
    with pytest.raises(storage.StorageError, match=r"emb.npz: is a folder \(the output is a file\)"):
        storage.check_output(str(tmp_path / "emb.npz"), folder=False)


def test_a_writable_output_passes_and_nothing_is_left(tmp_path):
    storage.check_output(str(tmp_path / "a" / "b" / "out.json"), folder=False)
    storage.check_output(str(tmp_path), folder=True)
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_written(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:
        # Root ignores permission bits: a read-only mount is what stops root.
        if _mount(folder, "size=64k,ro"):
            pytest.skip("cannot mount a tmpfs here")
        cause = "read-only file system"
    else:
        folder.chmod(0o555)
        cause = "permission denied"
    try:
        with pytest.raises(storage.StorageError) as info:
            storage.check_output(str(folder / "scores.json"), folder=False)
        assert str(info.value) == f"{folder / 'scores.json'}: cannot write: {cause}"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_is_refused_before_the_work(tiny_fs):
    _fill(tiny_fs)
    with pytest.raises(storage.StorageError, match=r"run: cannot write: no space left on device$"):
        storage.check_output(str(tiny_fs / "run"), folder=True)
    assert os.listdir(tiny_fs) == ["filler"]


def test_a_write_that_fills_the_disk_leaves_nothing(tiny_fs):
    url = str(tiny_fs / "model.pt")
    with pytest.raises(storage.StorageError) as info:
        storage.write_bytes(url, bytes(1 << 20))
    assert str(info.value) == f"{url}: not written: no space left on device"
    assert os.listdir(tiny_fs) == []


def test_explain_is_one_line_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        tmp_path.write_text("x")
    assert storage.explain(info.value) == f"{tmp_path}: is a directory"


def test_an_input_that_is_not_a_regular_file_is_named_without_opening_it(tmp_path):
    fifo = tmp_path / "a.wav"
    os.mkfifo(fifo)
    assert storage.regular_file_problem(str(fifo)) == "not a regular file: a named pipe (FIFO)"
    assert storage.regular_file_problem("/dev/zero") == "not a regular file: a character device"
    (tmp_path / "b.wav").write_bytes(b"x")
    assert storage.regular_file_problem(str(tmp_path / "b.wav")) is None


@pytest.mark.integration
def test_object_store_outputs_are_checked(s3_bucket):
    storage.write_bytes(f"{s3_bucket}/taken", b"x")
    with pytest.raises(storage.StorageError, match="taken: exists and is an object"):
        storage.check_output(f"{s3_bucket}/taken", folder=True)
    with pytest.raises(storage.StorageError, match="run: is a folder"):
        storage.write_bytes(f"{s3_bucket}/run/a", b"x")
        storage.check_output(f"{s3_bucket}/run", folder=False)
    storage.check_output(f"{s3_bucket}/fresh", folder=True)
    assert storage.files_below(f"{s3_bucket}/fresh") == []
    with pytest.raises(
        storage.StorageError, match="/run: cannot write: the specified bucket does not exist$"
    ):
        storage.check_output(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/run", folder=True)
    with pytest.raises(FileNotFoundError) as info:
        storage.read_bytes(f"{s3_bucket}/nothing")
    assert storage.explain(info.value) == f"{s3_bucket[len('s3://') :]}/nothing: not found"
