"""The locks pin every package, agree with the bounds in requirements*.txt, and with each other;
dvc.lock holds the stages of dvc.yaml and no others."""
import re

import yaml
from dvc.repo import Repo

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT


def pins(name: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / name).read_text(), flags=re.M)
    return {canonicalize_name(package): version for package, version in found}


def direct(name: str) -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_every_direct_dependency_is_pinned_within_its_bounds():
    for source, lock in (("requirements.txt", "requirements.lock"), ("requirements-cluster.txt", "requirements-cluster.lock"),
                         ("requirements-dev.txt", "requirements-dev.lock")):
        locked = pins(lock)
        for requirement in direct(source):
            name = canonicalize_name(requirement.name)  # ruamel.yaml is locked as ruamel-yaml
            assert name in locked, f"{lock} lacks {name}: run `make lock`"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"{lock} pins {name}=={locked[name]}, outside {source}'s {requirement.specifier}: run `make lock`")


def test_the_tests_lock_is_the_pipelines_plus_test_packages():
    pipeline, tests = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: tests.get(name) for name in pipeline} == pipeline
    assert len(pipeline) > 100 and pipeline["torch"] == "2.13.0+cpu"


def test_the_cluster_lock_is_the_pipelines_plus_ray_and_the_tests_hold_it():
    pipeline, cluster, tests = pins("requirements.lock"), pins("requirements-cluster.lock"), pins("requirements-dev.lock")
    assert {name: cluster.get(name) for name in pipeline} == pipeline
    assert {name: tests.get(name) for name in cluster} == cluster
    assert "ray" in cluster and "ray" not in pipeline  # the default install has no Ray


def test_dvc_lock_holds_only_the_stages_dvc_yaml_defines():
    # DVC keeps a renamed or removed stage's entry in dvc.lock for ever, and every dvc command
    # parses the whole file (pure-Python YAML): 97 such entries made each stage of a repro 2.7 s slower.
    with Repo(str(ROOT)) as repo:
        defined = {stage.addressing for stage in repo.index.stages}
    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert not locked - defined, (f"dvc.lock keeps stages dvc.yaml no longer defines: {sorted(locked - defined)}; "
                                  "delete their entries (dvc.utils.serialize.modify_yaml keeps DVC's format)")
