"""The lab's "pod identity context": how the doctor may honestly probe as the sidecar's identity in a lab world.

A lab scenario models the sidecar's identity (its managed identity behind IMDS/NMI, its
mounted certificate, its projected service-account token). In a real cluster the doctor
acts as that identity only from inside the pod's identity context. In the lab,
:meth:`~promrw_doctor.lab.world.LabWorld.forwarder_env` *is* that context: the sidecar's
env with the pod's paths mapped to the files the world wrote (certificate, federated
token) and the IMDS/NMI address the pod would reach. Handing it to the probe
(``probe_options["identity_env"]``) is the lab's equivalent of running the doctor in the pod.
With ``as_me=True`` the doctor's own (lab) credential is used instead.
"""

from __future__ import annotations

from typing import Any


def ensure_pod_files(world: Any) -> None:
    """Write the files the pod would have mounted and the world writes only with live traffic
    (the workload-identity token file), so a probe without traffic finds them too."""
    env = world.scenario.sidecar_env()
    path = env.get("AZURE_FEDERATED_TOKEN_FILE")
    if path and not world.pod_path(path).exists():
        writer = getattr(world, "write_federated_token", None) or getattr(world, "_write_federated_token", None)
        if writer is not None:
            writer()


def pod_identity_context(world: Any) -> dict[str, str]:
    """The sidecar's env in the pod's identity context (pod paths mapped, IMDS/NMI address, CA bundle)."""
    ensure_pod_files(world)
    return dict(world.forwarder_env())


def lab_probe_options(world: Any, *, as_me: bool = False, timeout_s: float | None = None,
                      query_endpoint: str | None = None) -> dict[str, Any]:
    """``probe_options`` for ``api.diagnose``/``api.probe`` against a running lab world."""
    opts: dict[str, Any] = {"as_me": as_me}
    if not as_me:
        opts["identity_env"] = pod_identity_context(world)
        opts["identity_context"] = (f"the pod's identity context in lab world {world.scenario.name} "
                                    "(LabWorld.forwarder_env)")
    if timeout_s is not None:
        opts["timeout_s"] = timeout_s
    if query_endpoint is not None:
        opts["query_endpoint"] = query_endpoint
    return opts


def workspace_query_endpoint(world: Any) -> str:
    """The (first) workspace's query endpoint in the lab."""
    for name, url in world.endpoints.items():
        if name.startswith("query:"):
            return str(url)
    raise KeyError("the lab world has no workspace query endpoint")
