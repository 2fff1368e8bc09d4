"""aad-pod-identity CRD helpers (pure)."""

from __future__ import annotations

from promrw_doctor.domain.podidentity import (
    CAPITALISED_KEYS,
    binding_spec_problems,
    compare_selector,
    has_typographic_quotes,
    identity_spec_problems,
    identity_type,
    is_guid,
    is_resource_id,
    miscased_keys,
    strip_typographic_quotes,
    to_ascii_quotes,
)

RID = (
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/rg-aks/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/prom-rw-mi"
)
CID = "11111111-2222-3333-4444-555555555555"


def test_capitalised_keys_table() -> None:
    for key in (
        "AzureIdentity",
        "Selector",
        "ClientID",
        "ResourceID",
        "TenantID",
        "ClientPassword",
        "PodLabels",
    ):
        assert CAPITALISED_KEYS[key][0].islower()


def test_miscased_keys() -> None:
    spec = {"AzureIdentity": "a", "Selector": "b", "weight": 1}
    assert miscased_keys(spec, ("azureIdentity", "selector", "weight")) == [
        ("AzureIdentity", "azureIdentity"),
        ("Selector", "selector"),
    ]
    assert miscased_keys({"clientId": CID}, ("clientID",)) == [("clientId", "clientID")]
    assert miscased_keys(None, ("x",)) == []


def test_typographic_quotes() -> None:
    assert has_typographic_quotes("“<AzureIdentityName>”")
    assert has_typographic_quotes("‘x’")
    assert not has_typographic_quotes('"x"')
    assert strip_typographic_quotes("“prom-rw”") == "prom-rw"
    assert to_ascii_quotes("“a” ‘b’") == "\"a\" 'b'"


def test_compare_selector() -> None:
    assert compare_selector("prom-rw", "prom-rw").kind == "exact"
    assert compare_selector("Prom-RW", "prom-rw").reasons == ("case",)
    assert compare_selector("prom-rw ", "prom-rw").reasons == ("whitespace",)
    assert compare_selector("prom-rw", "“prom-rw”").reasons == ("typographic quotes",)
    m = compare_selector("PROM-RW", "“prom-rw” ")
    assert m.kind == "near" and set(m.reasons) == {"typographic quotes", "case"}
    assert compare_selector("other", "prom-rw").kind == "none"
    assert compare_selector(None, "prom-rw").kind == "none"


def test_binding_problems_for_the_seed_spec() -> None:
    probs = binding_spec_problems({"AzureIdentity": "“<AzureIdentityName>”", "Selector": "“<Sel>”"})
    kinds = sorted((p.kind, p.field) for p in probs)
    assert kinds == [
        ("miscased-key", "azureIdentity"),
        ("miscased-key", "selector"),
        ("typographic-quotes", "AzureIdentity"),
        ("typographic-quotes", "Selector"),
    ]


def test_binding_problems_good_and_empty() -> None:
    assert binding_spec_problems({"azureIdentity": "prom-rw-mi", "selector": "prom-rw"}) == []
    assert [p.field for p in binding_spec_problems(None)] == ["azureIdentity", "selector"]
    assert [p.kind for p in binding_spec_problems({"azureIdentity": "x", "selector": ""})] == ["missing"]


def test_identity_problems() -> None:
    assert identity_spec_problems({"type": 0, "resourceID": RID, "clientID": CID}) == []
    assert is_resource_id(RID) and is_resource_id(RID.replace("resourcegroups", "resourceGroups"))
    assert not is_resource_id("/subscriptions/x/resourcegroups/rg/providers/Microsoft.Compute/vm/a")
    probs = identity_spec_problems({"type": 0, "resourceID": "prom-rw-mi", "clientID": "abc"})
    assert sorted(p.field for p in probs) == ["clientID", "resourceID"]
    probs = identity_spec_problems({"type": 0, "ResourceID": RID, "ClientID": CID})
    assert sorted((p.kind, p.field) for p in probs) == [
        ("miscased-key", "clientID"),
        ("miscased-key", "resourceID"),
    ]
    assert [p.kind for p in identity_spec_problems({"type": 7, "clientID": CID})] == ["unknown-type"]
    assert [p.field for p in identity_spec_problems({"resourceID": RID, "clientID": CID})] == ["type"]
    assert [p.field for p in identity_spec_problems({"type": 1, "clientID": CID})] == ["tenantID"]
    assert identity_spec_problems({"type": 0, "resourceID": "<resource-id>", "clientID": "<client-id>"}) == []


def test_identity_type_and_guid() -> None:
    assert identity_type({"type": "0"}) == 0
    assert identity_type({"type": True}) is None
    assert is_guid(CID) and not is_guid("x")
