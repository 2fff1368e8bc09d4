"""Certificate wiring for ``IDENTITY_TYPE=aadApplication``: env path -> volumeMount -> CSI volume ->
SecretProviderClass -> object. Pure; shared by the two certificate lint checks.

Why a chain: each link is a separate YAML block (often in separate files) and any broken link
means the sidecar finds no certificate (or one without a private key) at start-up.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..domain.sidecar import find_placeholder
from .loader import DocumentSet, LintDocument, LoadLimits, parse_documents
from .views import Sidecar

CSI_DRIVER = "secrets-store.csi.k8s.io"


@dataclass(frozen=True)
class SpcObject:
    """One ``objects.array`` item of a SecretProviderClass (Azure provider)."""

    name: str
    alias: str | None
    type: str | None
    line: int  # line of objectName
    type_line: int = 0  # line of objectType (0: not written)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        """The file the CSI driver writes: ``objectAlias`` if set, else ``objectName``."""
        return self.alias or self.name


@dataclass
class CertWiring:
    """How far the chain resolves. ``problem`` (with ``code`` and ``location``) names the first broken link."""

    sidecar: Sidecar
    cert_path: str | None = None
    mount: Mapping[str, Any] | None = None
    mount_index: int | None = None
    volume: Mapping[str, Any] | None = None
    volume_index: int | None = None
    spc_name: str | None = None
    spc: LintDocument | None = None
    objects: list[SpcObject] = field(default_factory=list)
    obj: SpcObject | None = None
    file_name: str | None = None
    problem: str | None = None
    code: str | None = None
    location: str | None = None
    status: str = "fail"  # fail | warn | skip | note
    evidence: dict[str, Any] = field(default_factory=dict)


def parse_spc_objects(doc: LintDocument) -> tuple[list[SpcObject], str | None]:
    """Parse ``spec.parameters.objects`` (a YAML string holding ``array:`` of YAML strings).

    Returns ``(objects, error)``; nested strings are parsed with the same safety limits as files.
    """
    text = doc.get("spec", "parameters", "objects")
    if not isinstance(text, str) or not text.strip():
        return [], "spec.parameters.objects is missing"
    base_line = doc.value_line("spec", "parameters", "objects")
    try:
        outer = parse_documents(text, f"{doc.file}:objects", LoadLimits(max_bytes=1024 * 1024))
    except Exception as exc:  # InputError from the nested parse: report, don't abort the run
        return [], f"spec.parameters.objects is not valid YAML: {exc}"
    data = outer[0].data if outer else None
    array = data.get("array") if isinstance(data, Mapping) else None
    if not isinstance(array, list):
        return [], "spec.parameters.objects has no 'array:' list"
    lines = text.splitlines()
    out: list[SpcObject] = []
    for i, item in enumerate(array):
        obj: Any = item
        if isinstance(item, str):
            try:
                inner = parse_documents(item, f"{doc.file}:objects[{i}]", LoadLimits(max_bytes=1024 * 1024))
            except Exception as exc:
                return out, f"objects array item {i} is not valid YAML: {exc}"
            obj = inner[0].data if inner else None
        if not isinstance(obj, Mapping) or not obj.get("objectName"):
            return out, f"objects array item {i} has no objectName"
        name = str(obj["objectName"]).strip()
        offset = next((n for n, text_line in enumerate(lines) if "objectName" in text_line and name in text_line), 0)
        end = next((n for n in range(offset + 1, len(lines)) if "objectName" in lines[n]), len(lines))
        type_offset = next((n for n in range(offset, end) if "objectType" in lines[n]), None)
        # A block scalar's value starts on the line after "objects: |".
        multi_line = "\n" in text.strip()
        line = base_line + 1 + offset if multi_line else base_line
        type_line = base_line + 1 + type_offset if multi_line and type_offset is not None else 0
        alias = obj.get("objectAlias")
        otype = obj.get("objectType")
        out.append(SpcObject(name=name, alias=str(alias).strip() if alias else None,
                             type=str(otype).strip() if otype else None, line=line, type_line=type_line,
                             raw=dict(obj)))
    return out, None


def _under(path: str, mount_path: str) -> str | None:
    """The path of ``path`` relative to ``mount_path`` if it lies under it."""
    p = posixpath.normpath(path)
    m = posixpath.normpath(mount_path)
    if m == "/":
        return p.lstrip("/") or None
    if p.startswith(m + "/"):
        return p[len(m) + 1:]
    return None


def resolve(sidecar: Sidecar, docs: DocumentSet) -> CertWiring:
    """Follow the chain as far as it goes; the first broken link sets ``problem``."""
    w = sidecar.workload
    doc = w.doc
    wiring = CertWiring(sidecar=sidecar)
    path = sidecar.env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    wiring.cert_path = path
    if not path:
        wiring.status, wiring.problem = "skip", "AZURE_CLIENT_CERTIFICATE_PATH is not set (see lint.sidecar-env)"
        return wiring
    mounts = sidecar.container.get("volumeMounts")
    mounts = mounts if isinstance(mounts, list) else []
    best: tuple[int, Mapping[str, Any], str] | None = None
    for i, m in enumerate(mounts):
        if isinstance(m, Mapping) and isinstance(m.get("mountPath"), str):
            rel = _under(path, m["mountPath"])
            if rel is not None and (best is None or len(m["mountPath"]) > len(best[1]["mountPath"])):
                best = (i, m, rel)
    if best is None:
        wiring.code = "CERT_NOT_MOUNTED"
        wiring.problem = (f"AZURE_CLIENT_CERTIFICATE_PATH {path} is not under any volumeMount of container "
                          f"{sidecar.name}")
        wiring.location = sidecar.env_loc("AZURE_CLIENT_CERTIFICATE_PATH")
        wiring.evidence = {"certificate_path": path,
                           "mount_paths": [m.get("mountPath") for m in mounts if isinstance(m, Mapping)]}
        return wiring
    wiring.mount_index, wiring.mount, wiring.file_name = best
    mount_name = wiring.mount.get("name")
    volumes = w.volumes
    vol = next(((j, v) for j, v in enumerate(volumes) if isinstance(v, Mapping) and v.get("name") == mount_name), None)
    if vol is None:
        wiring.code = "CERT_NOT_MOUNTED"
        wiring.problem = (f"volumeMount {mount_name!r} ({wiring.mount.get('mountPath')}) has no volume of that "
                          f"name under {w.dotted('volumes')}")
        wiring.location = doc.loc(*sidecar.path, "volumeMounts", best[0])
        wiring.evidence = {"volume_mount": mount_name,
                           "volumes": [v.get("name") for v in volumes if isinstance(v, Mapping)]}
        return wiring
    wiring.volume_index, wiring.volume = vol
    csi = wiring.volume.get("csi")
    if not isinstance(csi, Mapping):
        kind = next((k for k in wiring.volume if k != "name"), "unknown")
        wiring.status = "note"
        wiring.problem = (f"certificate comes from a {kind} volume {mount_name!r}, not the secrets-store CSI driver; "
                          "lint cannot check the file inside")
        wiring.location = doc.loc(*w.spec_path, "volumes", vol[0])
        return wiring
    if csi.get("driver") != CSI_DRIVER:
        wiring.code = "CERT_NOT_MOUNTED"
        wiring.problem = f"volume {mount_name!r} uses CSI driver {csi.get('driver')!r}, not {CSI_DRIVER}"
        wiring.location = doc.loc(*w.spec_path, "volumes", vol[0], "csi")
        wiring.evidence = {"driver": csi.get("driver")}
        return wiring
    attrs = csi.get("volumeAttributes")
    spc_name = attrs.get("secretProviderClass") if isinstance(attrs, Mapping) else None
    wiring.spc_name = str(spc_name) if spc_name else None
    if not spc_name:
        wiring.code = "CERT_NOT_MOUNTED"
        wiring.problem = f"volume {mount_name!r} has no csi.volumeAttributes.secretProviderClass"
        wiring.location = doc.loc(*w.spec_path, "volumes", vol[0], "csi")
        return wiring
    classes = docs.of_kind("SecretProviderClass")
    if not classes:
        wiring.code, wiring.status = "SECRET_PROVIDER_CLASS_NOT_GIVEN", "warn"
        wiring.problem = (f"volume {mount_name!r} uses SecretProviderClass {spc_name!r}, which was not given; "
                          "the object name and type cannot be verified")
        wiring.location = doc.loc(*w.spec_path, "volumes", vol[0], "csi", "volumeAttributes", "secretProviderClass")
        return wiring
    spc = next((c for c in classes if c.name == spc_name), None)
    if spc is None:
        wiring.code = "CERT_NOT_MOUNTED"
        wiring.problem = (f"volume {mount_name!r} names SecretProviderClass {spc_name!r}, but the class given is "
                          f"named {', '.join(repr(c.name) for c in classes)}")
        wiring.location = doc.loc(*w.spec_path, "volumes", vol[0], "csi", "volumeAttributes", "secretProviderClass")
        wiring.evidence = {"secretProviderClass": spc_name, "classes_given": [c.name for c in classes]}
        return wiring
    wiring.spc = spc
    objects, error = parse_spc_objects(spc)
    wiring.objects = objects
    if error is not None:
        wiring.code = "SECRET_PROVIDER_CLASS_INVALID"
        wiring.problem = f"{spc.label}: {error}"
        wiring.location = spc.loc("spec", "parameters", "objects")
        return wiring
    file_name = wiring.file_name
    if find_placeholder(file_name or "") is not None:
        wiring.status = "skip"
        wiring.problem = f"certificate file name {file_name} is a placeholder (see lint.placeholders)"
        return wiring
    obj = next((o for o in objects if o.file_name == file_name), None)
    if obj is None:
        wiring.code = "CERT_NOT_MOUNTED"
        names = [o.file_name for o in objects]
        wiring.problem = (f"{spc.label} mounts {', '.join(names) or 'no files'} under "
                          f"{wiring.mount.get('mountPath')}, not {file_name!r}")
        wiring.location = sidecar.env_loc("AZURE_CLIENT_CERTIFICATE_PATH")
        wiring.evidence = {"certificate_path": path, "file_name": file_name, "objects": names}
        return wiring
    wiring.obj = obj
    wiring.status = "ok"
    return wiring
