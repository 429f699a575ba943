"""Test helpers around the stand-in sd-scripts checkout (this folder, minus `_*` names).

- `build_wheelhouse(dest)`: zips the fake packages in `_packages/` into real wheels by hand
  (`make_wheel` does one, from any folder of .py files)
  (dist-info METADATA, WHEEL, RECORD with sha256 hashes, entry_points.txt for the fake
  `accelerate` console script), so pip can install them with `--no-index --find-links dest`.
- `make_remote(root)`: a bare git repository holding the stand-in checkout as one commit; it
  stands in for https://github.com/kohya-ss/sd-scripts.git.
- `make_superproject(root, remote, commit)`: a repository with `kohya/sd-scripts` recorded as a
  gitlink plus a `.gitmodules` entry pointing at `remote` (like this project), left
  uninitialised: the empty folder setup has to fill.
Git needs `protocol.file.allow=always` for file-URL submodules; `git_env()` supplies it
through GIT_CONFIG_* variables for the test process only.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

STANDIN = Path(__file__).resolve().parent
PACKAGES = STANDIN / "_packages"
WHEELS = {  # distribution name -> (version, source folder, console scripts)
    "imagesize": ("1.4.1", PACKAGES / "imagesize", {}),
    "accelerate": ("1.6.0", PACKAGES / "accelerate", {"accelerate": "accelerate.commands.accelerate_cli:main"}),
    "lion-pytorch": ("0.2.3", PACKAGES / "lion_pytorch", {}),
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(dist: str, dest: Path) -> Path:
    version, source, scripts = WHEELS[dist]
    return make_wheel(dist, version, source, dest, scripts)


def make_wheel(dist: str, version: str, source: Path, dest: Path, scripts: dict[str, str] | None = None) -> Path:
    """A pure-Python wheel of every .py file under `source` (paths relative to it)."""
    scripts = scripts or {}
    project = dist.replace("-", "_")
    info = f"{project}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(source.rglob("*.py")):
        files[path.relative_to(source).as_posix()] = path.read_bytes()
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in scripts.items())
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{project}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def build_wheelhouse(dest: Path) -> Path:
    for dist in WHEELS:
        build_wheel(dist, dest)
    return dest


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow",
                "GIT_CONFIG_VALUE_0": "always", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@example.com",
                "GIT_TERMINAL_PROMPT": "0"})
    return env


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=True)
    return done.stdout.strip()


def copy_checkout(dest: Path) -> Path:
    shutil.copytree(STANDIN, dest, ignore=shutil.ignore_patterns("_*", "__pycache__", "*.pyc"))
    return dest


def make_remote(root: Path) -> tuple[Path, str]:
    """(bare repository path, commit) holding the stand-in checkout."""
    work = copy_checkout(root / "sd-scripts-work")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "stand-in sd-scripts", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    bare = root / "sd-scripts.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare, commit


def make_superproject(root: Path, remote: str, commit: str) -> Path:
    """A repository like this one: `kohya/sd-scripts` gitlink + .gitmodules, not initialised."""
    project = root / "project"
    (project / "kohya" / "sd-scripts").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=project)
    (project / ".gitmodules").write_text(
        f'[submodule "kohya/sd-scripts"]\n\tpath = kohya/sd-scripts\n\turl = {remote}\n')
    git("update-index", "--add", "--cacheinfo", f"160000,{commit},kohya/sd-scripts", cwd=project)
    git("add", ".gitmodules", cwd=project)
    git("commit", "-q", "-m", "superproject", cwd=project)
    return project
