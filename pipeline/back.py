"""`python -m pipeline back` (`make back`): from an experiment back to the commit it started
from, git's files and DVC's outputs as committed, without ever deleting an output DVC cannot put
back.

`dvc exp apply HEAD` does it when DVC's cache holds every output the commit's dvc.lock names.
Where it does not (a fresh clone without a remote: its outputs were computed here only for the
experiment), DVC's checkout removes the workspace's outputs first and then fails ("Checkout
failed ... Is your cache up to date?"). So this looks first: with every committed output in the
cache it applies HEAD as DVC would; otherwise it puts git's files back as committed (the
workspace's edits kept in `git stash`, as DVC keeps them) and runs `dvc repro`, which re-computes
what the cache lacks. The numerics are pinned (core/numerics.py), so that re-computation writes the
committed bytes on any CPU and both ways end with `git status` and `dvc status` clean.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .core.errors import PipelineError

STASH_MESSAGE = "python -m pipeline back: the workspace it replaced"


def _run(*command: str, capture: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=capture, text=True)
    if done.returncode != 0:
        said = [line for line in ((done.stderr or "") + (done.stdout or "")).splitlines() if line.strip()]
        reason = next((line for line in said if line.startswith("ERROR")), said[-1] if said else "no output")
        raise PipelineError(f"`{' '.join(command)}` failed: {reason.removeprefix('ERROR: ')}")
    return done


def uncached(rev: str = "HEAD") -> list[str]:
    """The outputs `rev`'s dvc.lock names that DVC's cache cannot check out (a folder: its
    listing or any file of it missing); git's own files (`cache: false`) are not DVC's to restore."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        repo = Repo()
    except DvcException as exc:
        raise PipelineError(f"not a DVC repository here: {exc}") from None
    with repo:
        cache = repo.cache.local
        missing = []
        for _ in repo.brancher(revs=[rev], workspace=False):
            for out in repo.index.outs:
                oid = out.hash_info.value if out.use_cache and out.hash_info else None
                if oid is None:
                    continue
                if not cache.exists(oid) or (out.hash_info.isdir and not all(
                        cache.exists(entry["md5"]) for entry in json.loads(Path(cache.oid_to_path(oid)).read_text()))):
                    missing.append(str(out.def_path))
        return missing


def main(params_path: str = "params.yaml") -> None:
    missing = uncached()
    if not missing:
        _run(sys.executable, "-m", "dvc", "exp", "apply", "HEAD")
        print("back: HEAD applied from DVC's cache (`dvc exp apply HEAD`); `git stash apply refs/exps/apply/stash` "
              "brings the replaced workspace back")
        return
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    print(f"back: the cache lacks {len(missing)} committed output(s) ({shown}): nothing is checked out over them; "
          f"git's files as committed, then `dvc repro` computes them")
    if _run("git", "status", "--porcelain", "--untracked-files=no", capture=True).stdout.strip():
        _run("git", "stash", "push", "--quiet", "-m", STASH_MESSAGE)
        print("back: the workspace's edits are in `git stash` (`git stash pop` brings them back)")
    _run(sys.executable, "-m", "dvc", "repro")
    left = _run("git", "status", "--porcelain", "--untracked-files=no", capture=True).stdout.strip()
    if left:
        raise PipelineError(f"`dvc repro` wrote other bytes than the commit holds ({left.splitlines()[0].split()[-1]} "
                            f"and {len(left.splitlines()) - 1} more): numerics not pinned, or the commit's dvc.lock "
                            f"is stale")
    print("back: the commit's outputs recomputed; git and DVC as committed")
