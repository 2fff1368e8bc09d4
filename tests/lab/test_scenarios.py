"""Scenario files: every shipped world loads and is what it claims; bad files fail in one line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from promrw_doctor.core.errors import InputError
from promrw_doctor.lab import scenario as sc
from promrw_doctor.lab.scenario import (
    PlaceholderValues,
    builtin_scenario_dir,
    deep_merge,
    list_scenarios,
    load_scenario,
    materialise,
)

SHIPPED = [i.name for i in list_scenarios(strict=True)]
HEALTHY = [n for n in SHIPPED if not load_scenario(n).expected_root_causes]
ONE_LINE = re.compile(r"^\S.*\.yaml: \$[^ ]*: .+$")

REQUIRED = {
    "healthy-pod-identity": [], "healthy-entra-cert": [], "healthy-workload-identity": [],
    "healthy-usgov": [],
    "label-missing": ["POD_IDENTITY_LABEL_MISSING"], "selector-mismatch": ["POD_IDENTITY_BINDING_MISMATCH"],
    "binding-capitalized-keys": ["POD_IDENTITY_BINDING_INVALID"],
    "clientid-mismatch": ["POD_IDENTITY_CLIENT_ID_MISMATCH"], "nmi-not-running": ["NMI_UNHEALTHY"],
    "identity-not-assigned": ["POD_IDENTITY_NOT_ASSIGNED"], "role-missing": ["ROLE_ASSIGNMENT_MISSING"],
    "role-on-wrong-scope": ["ROLE_ASSIGNMENT_MISSING"], "role-propagating": ["ROLE_ASSIGNMENT_PROPAGATING"],
    "cert-expired": ["CERT_EXPIRED"], "cert-expiring-soon": ["CERT_EXPIRING_SOON"],
    "cert-not-on-app": ["CERT_NOT_REGISTERED"], "cert-objecttype-cert": ["CERT_NO_PRIVATE_KEY"],
    "csi-path-mismatch": ["CERT_NOT_MOUNTED"], "wrong-dcr-id": ["DCR_NOT_FOUND"],
    "gov-audience-missing": ["AUDIENCE_MISMATCH"], "throttled": ["INGESTION_THROTTLED"],
    "sidecar-crashloop": ["SIDECAR_CONFIG_INVALID"], "sidecar-missing": ["SIDECAR_MISSING"],
    "remote-write-url-wrong-port": ["REMOTE_WRITE_URL_MISMATCH"],
    "known-bad-image": ["SIDECAR_IMAGE_KNOWN_BAD"], "prometheus-too-old": ["PROMETHEUS_VERSION_UNSUPPORTED"],
    "doctor-no-role-read": [],
}


# ----------------------------------------------------------------------------- shipped scenarios
def test_required_scenarios_exist_with_their_expected_codes() -> None:
    for name, codes in REQUIRED.items():
        assert name in SHIPPED, name
        assert list(load_scenario(name).expected_root_causes) == sorted(codes), name


def test_bases_are_hidden_and_not_runnable() -> None:
    bases = [p.parent.name for p in builtin_scenario_dir().glob("_base-*/scenario.yaml")]
    assert bases and not set(bases) & set(SHIPPED)
    with pytest.raises(InputError, match="shared base"):
        load_scenario(bases[0])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_is_consistent(name: str) -> None:
    s = load_scenario(name)
    assert s.description and "\n" not in s.description
    assert s.variant in sc.VARIANTS
    pod = s.pod()
    assert pod is not None, "every world has the Prometheus pod"
    assert pod["metadata"]["namespace"] == "monitoring"
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "prometheus"
    if name != "sidecar-missing":
        env = s.sidecar_env()
        assert env["INGESTION_URL"] and env["LISTENING_PORT"] == "8081"
        # Helm values -> CR -> StatefulSet template -> Pod: the sidecar env agrees in CR and pod
        # (except what the workload-identity webhook injects into the pod only).
        cr_env = {e["name"]: e["value"] for c in s.find("Prometheus")[0]["spec"]["containers"]
                  if c["name"] == "prom-remotewrite" for e in c["env"]}
        injected = {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"}
        if s.variant == "workloadIdentity":
            assert {k: v for k, v in env.items() if k not in injected} == cr_env
        else:
            assert env == cr_env
    # Every object is a full manifest the API server can index.
    keys = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in s.objects]
    assert len(keys) == len(set(keys))
    # Placeholders resolve in a world.
    values = PlaceholderValues(
        lab_dir="/tmp/x", ingestion_urls={d["name"]: "https://127.0.0.1:1/x" for d in s.azure.get("dcrs", [])},
        dce_endpoints={d["name"]: "https://127.0.0.1:1" for d in s.azure.get("dces", [])},
        cert_thumbprints={c: "AB" * 20 for c in s.azure.get("certificates", {})})
    text = json.dumps(materialise({"k": s.kubernetes, "a": s.azure}, values))
    assert "{{" not in text


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_worlds_have_no_latent_warning(name: str) -> None:
    """Healthy means no warning either: certs > 30 days, roles settled (> 30 min), quotas < 80 %."""
    s = load_scenario(name)
    for cert, spec in (s.azure.get("certificates") or {}).items():
        left = spec.get("valid_from_days", -30) + spec.get("valid_days", 365)
        assert left > 30, f"{cert} expires in {left} days"
    for ra in s.azure.get("role_assignments") or []:
        assert ra.get("created_minutes_ago", 240) > 30
    for ws in s.azure.get("workspaces") or []:
        for metric, value in (ws.get("metrics") or {}).items():
            values = value if isinstance(value, list) else [value]
            assert max(values) < 80, metric
        assert ws.get("data"), "a healthy workspace has recent data"
    for c in (s.sidecar_container() or {},):
        assert "20251030.1" not in c.get("image", "")
    for st in s.pod()["status"]["containerStatuses"]:  # type: ignore[index]
        assert st["ready"] and st["restartCount"] == 0


def test_expected_codes_are_in_the_catalog() -> None:
    from promrw_doctor.core.codes import catalog

    folder = Path(sc.__file__).parents[1] / "catalog"
    if not (folder / "azure.yaml").exists():
        pytest.skip("catalog/azure.yaml not written yet (Azure-side codes pending)")
    known = set(catalog())
    missing = {c for n in SHIPPED for c in load_scenario(n).expected_root_causes} - known
    assert not missing


def test_scenario_files_validate_with_jsonschema_too() -> None:
    """The hand-written validator and the real jsonschema agree on the shipped files."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = sc.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in builtin_scenario_dir().glob("*/scenario.yaml"):
        doc = yaml.safe_load(path.read_text())
        sc.validate_document(doc, path)
        if "extends" not in doc:  # complete azure section: the full schema applies
            assert not list(validator.iter_errors(doc)), path


# ----------------------------------------------------------------------------- invalid files
def _write(root: Path, name: str, doc: dict[str, Any] | str) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    (d / "scenario.yaml").write_text(text)
    return d / "scenario.yaml"


def _minimal(dirname: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": dirname, "description": "test world", "extends": "healthy-pod-identity",
                           "variant": "podIdentity", "expected": {"root_causes": []}}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def _error(tmp_path: Path, name: str) -> str:
    with pytest.raises(InputError) as info:
        load_scenario(name, [tmp_path])
    msg = str(info.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(("doc", "path", "problem"), [
    (_minimal("t", description=None), "$.description", "required field is missing"),
    (_minimal("t", traffic="yes"), "$.traffic", "expected a boolean, got string"),
    (_minimal("t", variant="podidentity"), "$.variant", "is not one of"),
    (_minimal("t", expected={"root_causes": ["role-missing"]}), "$.expected.root_causes[0]", "UPPER_SNAKE"),
    (_minimal("t", colour="blue"), "$.colour", "unknown field"),
    (_minimal("t", kubernetes={"objects": [{"apiVersion": "v1", "kind": "Pod", "metadata": {}}]}),
     "$.kubernetes.objects[0].metadata.name", "required field is missing"),
    (_minimal("t", azure={"throttle": "no"}), "$.azure.throttle", "expected a boolean"),
    (_minimal("t", azure={"role_assignments": [{"principal": "x", "role": "Owner", "scope": "dcr:amw-lab"}]}),
     "$.azure.role_assignments[0].role", "is not one of"),
    (_minimal("t", kubernetes={"logs": {"monitoring/pod": "x"}}), '$.kubernetes.logs["monitoring/pod"]',
     "unknown field"),
    (_minimal("t", name="other"), "$.name", "must equal the directory name"),
    (_minimal("t", expected=None), "$.expected", "required (not set in this file)"),
])
def test_invalid_file_gives_one_line_error(tmp_path: Path, doc: dict[str, Any], path: str, problem: str) -> None:
    f = _write(tmp_path, "t", doc)
    msg = _error(tmp_path, "t")
    assert msg.startswith(f"{f}: {path}: "), msg
    assert problem in msg
    assert ONE_LINE.match(msg)


def test_unknown_extends(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", _minimal("t", extends="healthy-pod-identiti"))
    msg = _error(tmp_path, "t")
    assert msg == (f"{f}: $.extends: unknown scenario \"healthy-pod-identiti\" "
                   "(did you mean healthy-pod-identity?)")


def test_extends_cycle(tmp_path: Path) -> None:
    _write(tmp_path, "a", _minimal("a", extends="b"))
    _write(tmp_path, "b", _minimal("b", extends="c"))
    fc = _write(tmp_path, "c", _minimal("c", extends="a"))
    msg = _error(tmp_path, "a")
    assert msg == f"{fc}: $.extends: cycle: a -> b -> c -> a"
    f = _write(tmp_path, "self", _minimal("self", extends="self"))
    assert _error(tmp_path, "self") == f"{f}: $.extends: cycle: self -> self"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", "name: t\ndescription: [unclosed\n")
    msg = _error(tmp_path, "t")
    assert msg.startswith(f"{f}: $: not valid YAML: line ")


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", "")
    assert _error(tmp_path, "t") == f"{f}: $: the file is empty"
    f = _write(tmp_path, "u", "- a\n- b\n")
    assert _error(tmp_path, "u") == f"{f}: $: expected a mapping, got array"


def test_patch_and_remove_must_match_something(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", _minimal("t", kubernetes={"patch": [{"kind": "Pod", "name": "nope", "merge": {}}]}))
    assert _error(tmp_path, "t") == f"{f}: $.kubernetes.patch[0]: matches no object (Pod/nope)"
    f = _write(tmp_path, "u", _minimal("u", kubernetes={"remove": [{"kind": "Secret", "name": "x"}]}))
    assert _error(tmp_path, "u") == f"{f}: $.kubernetes.remove[0]: matches no inherited object (Secret/x)"
    f = _write(tmp_path, "v", _minimal("v", kubernetes={"patch": [
        {"kind": "Pod", "name": "prometheus-prometheus-kube-prometheus-prometheus-0",
         "append": {"spec.nothere.volumes": [{"name": "x"}]}}]}))
    assert "spec.nothere: no such field" in _error(tmp_path, "v")


def test_unknown_placeholder_and_reference(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", _minimal("t", kubernetes={"logs": {"monitoring/p/c": "at {{yesterday}}"}}))
    msg = _error(tmp_path, "t")
    assert msg.startswith(f'{f}: $.kubernetes.logs["monitoring/p/c"]: unknown placeholder {{{{yesterday}}}}')
    _write(tmp_path, "u", _minimal("u", kubernetes={"logs": {"monitoring/p/c": "{{ingestion_url:nope}}"}}))
    assert 'unknown DCR "nope"' in _error(tmp_path, "u")


def test_incomplete_azure_entry_is_reported_after_merge(tmp_path: Path) -> None:
    f = _write(tmp_path, "t", _minimal("t", azure={"workspaces": [{"name": "second-ws", "dcr": "amw-lab"}]}))
    msg = _error(tmp_path, "t")
    assert msg.startswith(f"{f}: $.azure.workspaces[1].")
    assert "required field is missing" in msg


# ----------------------------------------------------------------------------- semantics
def test_user_dir_overrides_builtin_and_lists_it(tmp_path: Path) -> None:
    _write(tmp_path, "role-missing", _minimal("role-missing", description="my own role-missing",
                                              expected={"root_causes": ["MY_CODE"]}))
    s = load_scenario("role-missing", [tmp_path])
    assert s.description == "my own role-missing" and s.expected_root_causes == ("MY_CODE",)
    infos = {i.name: i for i in list_scenarios([tmp_path])}
    assert infos["role-missing"].path == tmp_path / "role-missing" / "scenario.yaml"
    assert load_scenario("role-missing").expected_root_causes == ("ROLE_ASSIGNMENT_MISSING",)


def test_broken_user_file_is_listed_not_fatal(tmp_path: Path) -> None:
    _write(tmp_path, "broken", "name: broken\n")
    infos = {i.name: i for i in list_scenarios([tmp_path])}
    assert infos["broken"].description.startswith("INVALID: ")
    with pytest.raises(InputError):
        list_scenarios([tmp_path], strict=True)


def test_load_by_path_and_unknown_name(tmp_path: Path) -> None:
    _write(tmp_path, "mine", _minimal("mine"))
    assert load_scenario(str(tmp_path / "mine")).name == "mine"
    with pytest.raises(InputError, match=r"unknown scenario 'role-mising' \(did you mean role-missing\?\)"):
        load_scenario("role-mising")
    with pytest.raises(InputError, match="not a directory"):
        load_scenario("role-missing", [tmp_path / "nope"])


def test_extends_merge_rules() -> None:
    base = load_scenario("healthy-pod-identity")
    s = load_scenario("label-missing")
    assert "aadpodidbinding" in base.pod()["metadata"]["labels"]  # type: ignore[index]
    assert "aadpodidbinding" not in s.pod()["metadata"]["labels"]  # type: ignore[index]
    assert not s.find("AzureAssignedIdentity")  # removed by the _base-pi-no-identity step
    assert s.azure["nmi"] == {"running": True, "assigned": []}  # mapping merged, list replaced
    ws = s.azure["workspaces"][0]
    assert ws["resource_group"] == "rg-monitoring" and "data" not in ws  # by-name merge, null deletes
    assert s.extends_chain == ("_base-pi-no-identity", "_base-token-fails", "healthy-pod-identity", "_base-aks")


def test_set_env_reaches_every_declaration_of_the_sidecar() -> None:
    s = load_scenario("csi-path-mismatch")
    want = "/mnt/secrets-store/prom-rw-certificate"
    for kind in ("Prometheus", "StatefulSet", "Pod"):
        obj = s.find(kind)[0]
        containers = (obj["spec"].get("containers") or obj["spec"]["template"]["spec"]["containers"])
        env = {e["name"]: e["value"] for c in containers if c["name"] == "prom-remotewrite" for e in c["env"]}
        assert env["AZURE_CLIENT_CERTIFICATE_PATH"] == want, kind


def test_remove_containers_and_container_status_patch() -> None:
    s = load_scenario("sidecar-missing")
    assert s.sidecar_container() is None
    assert "prom-remotewrite" not in [c["name"] for c in s.pod()["status"]["containerStatuses"]]  # type: ignore[index]
    crash = load_scenario("sidecar-crashloop")
    st = next(c for c in crash.pod()["status"]["containerStatuses"]  # type: ignore[index]
              if c["name"] == "prom-remotewrite")
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff" and st["restartCount"] == 23
    assert st["lastState"]["terminated"]["exitCode"] == 1
    assert crash.sidecar_env()["IDENTITY_TYPE"] == "UserAssigned "


def test_deep_merge() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}) == {"a": {"c": 2, "d": 3}}
    assert deep_merge({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}
    assert deep_merge({"l": [{"name": "x", "v": 1}]}, {"l": [{"name": "x", "w": 2}, {"name": "y"}]},
                      by_name=True) == {"l": [{"name": "x", "v": 1, "w": 2}, {"name": "y"}]}


def test_placeholders() -> None:
    now = datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)
    v = PlaceholderValues(now=now, lab_dir="/lab", ingestion_urls={"d": "https://h/x"},
                          authority_host="https://127.0.0.1:9/")
    out = materialise(["{{now-5m}}", "{{ now+1d }}", "{{now-90s|unix}}", "{{now|klog}}", "{{now-1s|ms}}",
                       "{{lab_dir}}/f", "{{ingestion_url:d}}", "{{authority_host}}", 3], v)
    assert out == ["2026-05-01T09:55:00Z", "2026-05-02T10:00:00Z", str(int(now.timestamp()) - 90),
                   "0501 10:00:00.000000", "2026-05-01T09:59:59.000Z", "/lab/f", "https://h/x",
                   "https://127.0.0.1:9/", 3]
    with pytest.raises(InputError):
        v.resolve("ingestion_url:other")


def test_with_denials_adds_to_the_world() -> None:
    s = load_scenario("doctor-no-role-read").with_denials(
        azure=["graph:Application.Read.All"], kubernetes=[{"verb": "list", "resource": "secrets"}])
    assert s.azure["doctor_denied"] == ["arm:roleAssignments/read", "graph:Application.Read.All"]
    assert s.kubernetes["deny"] == [{"verb": "list", "resource": "secrets"}]
    assert load_scenario("doctor-no-role-read").kubernetes["deny"] == []


# ----------------------------------------------------------------------------- CLI
def _cli(*args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "promrw_doctor", "lab", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_lab_scenarios_lists_every_runnable_world() -> None:
    out = _cli("scenarios", "-o", "json")
    assert out.returncode == 0, out.stderr
    listed = {i["name"]: i for i in json.loads(out.stdout)}
    assert sorted(listed) == sorted(SHIPPED)
    assert listed["role-missing"]["expected_root_causes"] == ["ROLE_ASSIGNMENT_MISSING"]
    table = _cli("scenarios").stdout.splitlines()
    assert table[0].split()[:2] == ["SCENARIO", "VARIANT"]
    assert any(line.startswith("selector-mismatch ") for line in table)


@pytest.mark.parametrize("command", ["up", "run"])
def test_cli_bad_scenario_is_one_line_exit_2(command: str, tmp_path: Path) -> None:
    out = _cli(command, "--scenario", "no-such-world")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown scenario 'no-such-world'" in out.stderr
    _write(tmp_path, "t", _minimal("t", traffic="yes"))
    out = _cli(command, "--scenario", "t", "--scenario-dir", str(tmp_path))
    assert out.returncode == 2
    assert "$.traffic: expected a boolean, got string" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bad_deny_option_is_exit_2() -> None:
    out = _cli("up", "--deny-kube", "delete:pods")
    assert out.returncode == 2 and "--deny-kube 'delete:pods'" in out.stderr


def _exposition_families(doc: str) -> dict[str, list[str]]:
    """Sample lines by family; asserts the textfile rules that matter here (HELP/TYPE first, no blank line)."""
    assert doc.endswith("\n") and "\n\n" not in doc
    families: dict[str, list[str]] = {}
    current = ""
    for line in doc[:-1].split("\n"):
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in families, f"family {current} declared twice"
            families[current] = []
        elif line.startswith("# TYPE "):
            assert line.split()[2] == current
        else:
            assert line and not line.startswith("#") and line.startswith(current), line
            families[current].append(line)
    return families


@pytest.mark.slow
def test_cli_lab_run_prometheus_is_one_exposition_per_scenario() -> None:
    out = _cli("run", "-s", "role-missing", "-o", "prometheus", "--no-traffic")
    assert out.returncode == 0, out.stderr
    families = _exposition_families(out.stdout)  # stdout is exactly one textfile: headers/verdicts on stderr
    assert 'code="ROLE_ASSIGNMENT_MISSING"' in "\n".join(families["promrw_doctor_root_causes"])
    assert families["promrw_doctor_run_exit_code"] == ["promrw_doctor_run_exit_code 1"]  # what `run` would exit
    assert "=== lab scenario role-missing" in out.stderr and "1/1 scenario(s) diagnosed as expected" in out.stderr
    two = _cli("run", "-s", "role-missing", "-s", "healthy-managed-identity", "-o", "prometheus", "--no-traffic")
    assert two.returncode == 0, two.stderr
    docs = two.stdout.split("\n\n")
    assert len(docs) == 2
    first, second = (_exposition_families(d if d.endswith("\n") else d + "\n") for d in docs)
    assert first["promrw_doctor_run_exit_code"] == ["promrw_doctor_run_exit_code 1"]
    assert second["promrw_doctor_run_exit_code"] == ["promrw_doctor_run_exit_code 0"]
    assert not any(line.endswith(" 1") for line in second.get("promrw_doctor_root_causes", []))
    promtool = shutil.which("promtool")
    if promtool:  # Prometheus's own linter on the single-scenario stdout
        lint = subprocess.run([promtool, "check", "metrics"], input=out.stdout, capture_output=True, text=True,
                              timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr
