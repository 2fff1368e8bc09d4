"""Lint input safety: every kind of bad input is one InputError line, raised before any check runs."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from promrw_doctor.core import InputError, check
from promrw_doctor.core.engine import run_checks
from promrw_doctor.core.errors import EXIT_USAGE
from promrw_doctor.core.facts import FactStore
from promrw_doctor.core.model import Target
from promrw_doctor.core.registry import load_registry, spec_of
from promrw_doctor.lint import lint
from promrw_doctor.lint.loader import (
    DEFAULT_MAX_BYTES,
    KIND_HELM_VALUES,
    LoadLimits,
    expanded_size,
    load_documents,
    parse_documents,
)

from .helpers import fx, registry

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
prometheus: {prometheusSpec: {containers: *i}}
"""


def refused(paths: list[str], match: str, stdin_text: str | None = None) -> InputError:
    with pytest.raises(InputError, match=match) as exc:
        load_documents(paths, stdin_text=stdin_text)
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    assert exc.value.exit_code == EXIT_USAGE
    return exc.value


def test_missing_file() -> None:
    refused(["/nonexistent/values.yaml"], r"^/nonexistent/values.yaml: no such file$")


def test_directory() -> None:
    refused([fx("bad-input")], "is a directory")


def test_not_yaml_names_file_and_line() -> None:
    err = refused([fx("bad-input/not-yaml.yaml")], "not valid YAML")
    assert str(err).startswith(fx("bad-input/not-yaml.yaml") + ":6:")


def test_binary_file() -> None:
    refused([fx("bad-input/binary.yaml")], "binary file")


def test_not_utf8() -> None:
    refused([fx("bad-input/latin1.yaml")], r":4: not UTF-8 text \(byte 0xfc")


def test_empty_file(tmp_path: Path) -> None:
    refused([fx("bad-input/empty.yaml")], "empty input")
    empty = tmp_path / "zero.yaml"
    empty.write_text("")
    refused([str(empty)], "empty input")


def test_only_unknown_kinds_says_what_was_seen_and_understood() -> None:
    err = str(refused([fx("bad-input/unknown-kinds.yaml")], "nothing to lint"))
    assert "kind ConfigMap" in err and "kind Service" in err
    assert "understood:" in err and "AzureIdentityBinding" in err and "SecretProviderClass" in err
    assert "prometheus.prometheusSpec" in err


def test_plain_text_is_not_understood(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("just some words\n")
    refused([str(p)], r"saw a str \(not a mapping\)")


def test_unknown_kinds_are_fine_next_to_understood_ones() -> None:
    docs = load_documents([fx("bad-input/unknown-kinds.yaml"), fx("good/managed-identity-values.yaml")])
    assert [d.kind for d in docs] == ["unknown", "unknown", KIND_HELM_VALUES]


def test_yaml_bomb_refused_fast_and_never_expanded(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        refused([str(bomb)], "YAML bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0
    assert peak < 20 * 1024 * 1024


def test_recursive_alias_refused(tmp_path: Path) -> None:
    p = tmp_path / "loop.yaml"
    p.write_text("prometheus: &p {prometheusSpec: {x: *p}}\n")
    refused([str(p)], "recursive YAML alias")


def test_too_many_aliases_refused(tmp_path: Path) -> None:
    p = tmp_path / "aliases.yaml"
    p.write_text("a: &a 1\nb: [" + ",".join(["*a"] * 20_001) + "]\n")
    refused([str(p)], "more than 10000 YAML aliases")


def test_moderate_aliases_are_fine() -> None:
    text = "base: &env [{name: A, value: '1'}]\nprometheus:\n  prometheusSpec:\n    x: *env\n    y: *env\n"
    (doc,) = parse_documents(text, "t.yaml")
    assert doc.get("prometheus", "prometheusSpec", "y", 0, "name") == "A"


def test_expanded_size_is_computed_not_expanded() -> None:
    import yaml

    node = yaml.compose(BILLION_LAUGHS, Loader=yaml.SafeLoader)
    assert node is not None
    unique, expanded = expanded_size(node, 10**6)
    assert unique < 200 and expanded == 10**6 + 1  # capped


def test_deep_nesting_refused_without_crashing(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("[" * 100_000 + "]" * 100_000)
    refused([str(p)], "nesting deeper than 128 levels")


def test_50_mb_file_refused_fast_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "huge-values.yaml"
    with open(big, "wb") as fh:
        fh.write(b"prometheus:\n  prometheusSpec: {}\n")
        fh.seek(50 * 1024 * 1024)
        fh.write(b"\n")
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        err = refused([str(big)], "larger than the 10 MB limit")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.5
    assert peak < 1024 * 1024  # never read into memory
    assert "file is 50.0 MB" in str(err)
    assert DEFAULT_MAX_BYTES == 10 * 1024 * 1024


def test_size_cap_is_configurable(tmp_path: Path) -> None:
    p = tmp_path / "v.yaml"
    p.write_text(Path(fx("good/managed-identity-values.yaml")).read_text(encoding="utf-8"))
    with pytest.raises(InputError, match="larger than the 1 KB limit"):
        load_documents([str(p)], limits=LoadLimits(max_bytes=1024))


def test_stdin() -> None:
    text = Path(fx("good/workload-identity-values.yaml")).read_text(encoding="utf-8")
    docs = load_documents(["-"], stdin_text=text)
    assert docs.files == ("<stdin>",) and docs.documents[0].loc("prometheus") == "<stdin>:2"
    refused(["-"], "no input on stdin")
    refused(["-"], "binary input", stdin_text="a\x00b")
    refused(["-"], "larger than the 10 MB limit", stdin_text="x" * (DEFAULT_MAX_BYTES + 1))


def test_no_paths() -> None:
    refused([], "no files given")


def test_input_error_before_any_check_runs(tmp_path: Path) -> None:
    calls: list[str] = []

    @check(id="lint.spy", title="spy", category="lint", severity="info", codes=[], needs=["lint.documents"])
    def spy(ctx: object) -> None:
        calls.append("ran")

    spec = spec_of(spy)
    assert spec is not None
    reg = load_registry(entry_points=False, extra=[spec])
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="no such file"):
        lint([fx("good/managed-identity-values.yaml"), missing], registry=reg)
    with pytest.raises(InputError, match="no such file"):  # through the fact, as a generic engine run
        run_checks(reg, reg.select(categories=["lint"]), [Target("files", "files")],
                   FactStore({"lint_paths": [missing]}), command="lint")
    assert calls == []
    report = lint([fx("good/managed-identity-values.yaml")], registry=reg)
    assert calls == ["ran"] and report.command == "lint"


def test_line_index_keys_values_lists_and_duplicates() -> None:
    text = (
        "prometheus:\n"            # 1
        "  prometheusSpec:\n"      # 2
        "    containers:\n"        # 3
        "      - name: a\n"        # 4
        "        env:\n"           # 5
        "          - name: X\n"    # 6
        "            value: |\n"   # 7
        "              one\n"      # 8
        "              two\n"      # 9
        "    containers:\n"        # 10  duplicate: the last one wins
        "      - name: b\n"        # 11
    )
    (doc,) = parse_documents(text, "v.yaml")
    assert doc.get("prometheus", "prometheusSpec", "containers", 0, "name") == "b"
    assert doc.line("prometheus", "prometheusSpec", "containers") == 10
    assert doc.loc("prometheus", "prometheusSpec", "containers", 0, "name") == "v.yaml:11"
    assert doc.line("prometheus", "prometheusSpec", "nope", "deeper") == 2  # nearest ancestor
    assert doc.duplicates == [(("prometheus", "prometheusSpec", "containers"), 3, 10)]


def test_block_scalar_lines() -> None:
    text = "kind: Pod\nmetadata:\n  name: p\nspec:\n  x: |\n    first\n    second <PH>\n"
    (doc,) = parse_documents(text, "p.yaml")
    assert doc.line_of_text("spec", "x", needle="<PH>") == 7


def test_list_items_become_documents() -> None:
    docs = load_documents([fx("broken/pod-list-known-bad-image.yaml")])
    (pod,) = docs.documents
    assert pod.kind == "Pod" and pod.base == ("items", 0)
    assert pod.line("spec", "containers", 1, "image") == 18
    assert pod.label == "Pod prometheus-prometheus-kube-prometheus-prometheus-0"


def test_registry_has_the_lint_checks() -> None:
    ids = {s.id for s in registry() if s.category == "lint"}
    assert {"lint.binding-keys", "lint.sidecar-present", "lint.sidecar-env", "lint.certificate-wiring"} <= ids
