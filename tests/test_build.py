"""`inv build`, run as a user would: from a small KUBE_ROOT whose
`make quick-release` writes a tarball, and `--release` against a release
mirror served by a real HTTP server on 127.0.0.1."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks.model.names import RELEASE_TARBALL
from tests.testcloud.release_mirror import ReleaseMirror

REPO = Path(__file__).resolve().parent.parent
VERSION = "v1.31.4"


def inv(tmp_path, *args, **env):
    environ = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
        "KUBE_DOWNLOAD_DIR": str(tmp_path / "downloads"), "KUBE_STATE_DIR": str(tmp_path / "state"),
    }
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=120)


def error_line(result):
    """The one line a failing task prints (and nothing like a traceback)."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def kube_root(tmp_path, recipe):
    root = tmp_path / "kubernetes"
    root.mkdir()
    (root / "Makefile").write_text(textwrap.dedent("""\
        .PHONY: quick-release
        quick-release:
        """) + "".join(f"\t{line}\n" for line in recipe))
    return root


TARBALL_RECIPE = [
    "@echo building the release in docker",
    "mkdir -p _output/release-tars/stage/kubernetes",
    "echo v1.32.0 > _output/release-tars/stage/kubernetes/version",
    f"tar -C _output/release-tars/stage -czf _output/release-tars/{RELEASE_TARBALL} kubernetes",
    "@echo done",
]


def test_build_from_kube_root(tmp_path):
    root = kube_root(tmp_path, TARBALL_RECIPE)
    result = inv(tmp_path, "build", KUBE_ROOT=str(root))
    assert result.returncode == 0, result.stderr
    tarball = root / "_output" / "release-tars" / RELEASE_TARBALL
    assert "building the release in docker" in result.stdout  # streamed
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert f"{tarball}" in result.stdout and digest in result.stdout


def test_build_failure_names_status_and_last_lines(tmp_path):
    root = kube_root(tmp_path, [f"@echo step {i}" for i in range(10)] + ["@echo 'docker: daemon not running'; exit 3"])
    line = error_line(inv(tmp_path, "build", KUBE_ROOT=str(root)))
    assert "make quick-release" in line and str(root) in line
    assert "exit status 2" in line  # make's own status when a recipe fails
    assert "docker: daemon not running" in line and "step 9" in line and "step 2" not in line


def test_build_without_a_tarball(tmp_path):
    root = kube_root(tmp_path, ["@echo nothing built"])
    line = error_line(inv(tmp_path, "build", KUBE_ROOT=str(root)))
    assert "left no tarball" in line
    assert str(root / "server" / RELEASE_TARBALL) in line
    assert str(root / "_output" / "release-tars" / RELEASE_TARBALL) in line


def test_kube_root_problems(tmp_path):
    assert "KUBE_ROOT not set" in error_line(inv(tmp_path, "build"))
    missing = tmp_path / "nowhere"
    assert f"KUBE_ROOT={missing} does not exist" in error_line(inv(tmp_path, "build", KUBE_ROOT=str(missing)))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "Makefile").write_text("all:\n\ttrue\n")
    assert "not a Kubernetes checkout" in error_line(inv(tmp_path, "build", KUBE_ROOT=str(tmp_path / "other")))


@pytest.fixture
def mirror(tmp_path):
    m = ReleaseMirror(str(tmp_path / "mirror"), VERSION)
    yield m
    m.stop()


def test_release_download_verifies_and_is_kept(tmp_path, mirror):
    result = inv(tmp_path, "build", "--release", KUBE_RELEASE_URL=mirror.base_url)
    assert result.returncode == 0, result.stderr
    dest = tmp_path / "downloads" / VERSION / RELEASE_TARBALL
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == mirror.sha256
    assert (tmp_path / "downloads" / "stable.txt").read_text().strip() == VERSION
    assert mirror.sha256 in result.stdout
    # A second run keeps the verified file.
    again = inv(tmp_path, "build", "--release", VERSION, KUBE_RELEASE_URL=mirror.base_url)
    assert again.returncode == 0, again.stderr
    assert "already downloaded and verified" in again.stderr
    # A local file that no longer verifies is deleted, reported and fetched again.
    dest.write_bytes(b"tampered")
    third = inv(tmp_path, "build", "--release", VERSION, KUBE_RELEASE_URL=mirror.base_url)
    assert third.returncode == 0, third.stderr
    assert f"deleted {dest}" in third.stderr
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == mirror.sha256


def test_release_download_rejects_a_corrupt_tarball(tmp_path, mirror):
    served = Path(mirror.root) / VERSION / "kubernetes/server/linux/amd64" / RELEASE_TARBALL
    served.write_bytes(served.read_bytes()[:-10] + b"corrupted!")
    line = error_line(inv(tmp_path, "build", "--release", VERSION, KUBE_RELEASE_URL=mirror.base_url))
    assert "failed verification" in line and mirror.sha256 in line and "deleted it" in line
    version_dir = tmp_path / "downloads" / VERSION
    assert not any(version_dir.iterdir())  # neither the tarball nor a .part file


def test_release_errors(tmp_path, mirror):
    line = error_line(inv(tmp_path, "build", "--release", "v9.9.9", KUBE_RELEASE_URL=mirror.base_url))
    assert "HTTP 404" in line and "v9.9.9" in line and "KUBE_VERSION" in line
    line = error_line(inv(tmp_path, "build", "--release", "latest", KUBE_RELEASE_URL=mirror.base_url))
    assert "KUBE_VERSION (from flag)" in line
