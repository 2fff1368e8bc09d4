"""Registry: discovery from built-ins, entry points (a real built + installed package) and --checks-dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promrw_doctor.core import RegistryError, check
from promrw_doctor.core.registry import Registry, load_registry, spec_of

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None, input_text: str | None = None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "promrw_doctor", *args], capture_output=True, text=True,
                          env=full_env, input=input_text, timeout=120)


def _spec(id_: str, deps=()):
    @check(id=id_, title=id_, category="pipeline", severity="low", codes=["C"], depends_on=deps)
    def f(ctx):
        return None

    return spec_of(f)


def test_duplicate_id_is_a_startup_error():
    with pytest.raises(RegistryError, match=r"duplicate check id .pipeline\.a."):
        Registry([_spec("pipeline.a"), _spec("pipeline.a")])


def test_cycle_is_a_startup_error_naming_the_cycle():
    with pytest.raises(RegistryError, match=r"cycle.*pipeline\.a -> pipeline\.b -> pipeline\.a"):
        Registry([_spec("pipeline.a", ["pipeline.b"]), _spec("pipeline.b", ["pipeline.a"])])


def test_unknown_dependency_is_a_startup_error():
    with pytest.raises(RegistryError, match=r"unknown check .pipeline\.nope."):
        Registry([_spec("pipeline.a", ["pipeline.nope"])])


def test_bad_metadata_rejected():
    with pytest.raises(RegistryError, match="unknown category"):
        check(id="x.y", title="t", category="weird", severity="low", codes=[])
    with pytest.raises(RegistryError, match="unknown severity"):
        check(id="x.y", title="t", category="lint", severity="urgent", codes=[])


def test_select_by_id_code_tag_and_glob():
    @check(id="pipeline.tagged", title="t", category="pipeline", severity="low", codes=["TAGGED_CODE"],
           tags=["slowpath"])
    def tagged(ctx):
        return None

    reg = Registry([_spec("pipeline.a"), spec_of(tagged)])
    assert [s.id for s in reg.select(only=["TAGGED_CODE"])] == ["pipeline.tagged"]
    assert [s.id for s in reg.select(only=["slowpath"])] == ["pipeline.tagged"]
    assert [s.id for s in reg.select(only=["pipeline.*"], skip=["pipeline.a"])] == ["pipeline.tagged"]


CHECK_FILE = '''
from promrw_doctor.core import check

@check(id="pipeline.{name}", title="{name} from a file", category="pipeline", severity="low",
       codes=["{code}"])
def {name}(ctx):
    """A check loaded from {where}."""
    return ctx.fail("{code}", "{name} ran")
'''


def test_checks_dir_file_is_listed_and_runs(tmp_path):
    d = tmp_path / "mychecks"
    d.mkdir()
    (d / "local.py").write_text(CHECK_FILE.format(name="local_check", code="LOCAL_CODE", where="a dir"))
    reg = load_registry([d], entry_points=False)
    spec = reg.get("pipeline.local_check")
    assert spec is not None and spec.source.startswith("file:")
    out = _cli("list-checks", "-o", "json", "--checks-dir", str(d))
    assert out.returncode == 0, out.stderr
    assert "pipeline.local_check" in [c["id"] for c in json.loads(out.stdout)]


def test_checks_dir_errors_are_one_line_exit_2(tmp_path):
    out = _cli("list-checks", "--checks-dir", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert "no such directory" in out.stderr and "Traceback" not in out.stderr
    d = tmp_path / "broken"
    d.mkdir()
    (d / "bad.py").write_text("import this_module_does_not_exist\n")
    out = _cli("list-checks", "--checks-dir", str(d))
    assert out.returncode == 2
    assert "cannot load check file" in out.stderr and "Traceback" not in out.stderr
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "a.py").write_text(CHECK_FILE.format(name="same", code="A", where="a"))
    (dup / "b.py").write_text(CHECK_FILE.format(name="same", code="B", where="b"))
    out = _cli("list-checks", "--checks-dir", str(dup))
    assert out.returncode == 2 and "duplicate check id" in out.stderr


def test_third_party_package_built_and_installed_appears_and_runs(tmp_path):
    pkg = tmp_path / "src"
    (pkg / "acme_promrw_checks").mkdir(parents=True)
    (pkg / "acme_promrw_checks" / "__init__.py").write_text(
        CHECK_FILE.format(name="acme_check", code="ACME_BROKEN", where="the acme plugin"))
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "acme-promrw-checks"
        version = "1.0"
        [project.entry-points."promrw_doctor.checks"]
        acme = "acme_promrw_checks"
        [tool.setuptools]
        packages = ["acme_promrw_checks"]
    """))
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
         "--no-index", "--target", str(site), str(pkg)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = _cli("list-checks", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    entry = next(c for c in json.loads(listed.stdout) if c["id"] == "pipeline.acme_check")
    assert entry["source"] == "entry-point:acme-promrw-checks:acme"
    explained = _cli("explain", "pipeline.acme_check", env=env)
    assert explained.returncode == 0 and "the acme plugin" in explained.stdout
    # And it runs through the engine like a built-in.
    code = textwrap.dedent("""
        from promrw_doctor.core import FactStore, Target
        from promrw_doctor.core.engine import run_checks
        from promrw_doctor.core.registry import load_registry
        reg = load_registry(builtin=False)
        rep = run_checks(reg, list(reg), [Target(id="t", kind="test")], FactStore(), command="t")
        print([(r.check_id, r.status.value) for r in rep.results])
    """)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=60)
    assert "('pipeline.acme_check', 'fail')" in ran.stdout, ran.stderr
