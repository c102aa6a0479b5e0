"""Access control without services: scopes as filters, document marks, keys, limits, and both stores' rule.

The embedded store applies a scope inside its SQL (BM25) and as a row mask (dense); these tests write chunks
of two groups, each with its own marker word, and check that no search under one group's scope returns the
other's, however the caller's own filter is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from ragship.access.keys import KeysFile
from ragship.access.limits import PrincipalLimits
from ragship.access.marks import declared_groups, front_matter_access, rule_access, rules_fingerprint
from ragship.access.principal import Principal
from ragship.access.scope import AccessScope, current_scope, split_access
from ragship.enums import AccessDefault, Scope
from ragship.errors import AuthenticationError, ConversionError, PermissionDeniedError, RateLimitedError
from ragship.stores import EmbeddedDocumentStore
from ragship.stores.es_filters import to_es_filter

DIM = 8
HR = AccessScope.of_groups(["hr"], AccessDefault.PUBLIC, "hr-user")
HR_DENY = AccessScope.of_groups(["hr"], AccessDefault.DENY, "hr-user")
FINANCE_OR = {"field": "meta.access", "operator": "in", "value": ["finance"]}


def _doc(i: int, content: str, access: list[str] | None) -> Document:
    vec = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    meta: dict[str, object] = {"source": f"s{i}.md"}
    if access is not None:
        meta["access"] = access
    return Document(id=f"d{i}", content=content, meta=meta, embedding=vec.tolist())


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    s = EmbeddedDocumentStore(tmp_path / "store")
    s.write_documents(
        [
            _doc(1, "quarterly budget zorblax revenue", ["finance"]),
            _doc(2, "budget plan zorblax forecast", ["finance", "board"]),
            _doc(3, "budget holiday quintessa policy", ["hr"]),
            _doc(4, "budget public handbook", None),
            _doc(5, "budget marked empty", []),
        ]
    )
    return s


def _ids(docs: list[Document]) -> set[str]:
    return {d.id for d in docs}


def test_a_scope_is_a_filter_that_callers_can_only_narrow() -> None:
    assert AccessScope.everything().filter() is None
    assert AccessScope.everything().restrict(FINANCE_OR) == FINANCE_OR
    combined = HR.restrict(FINANCE_OR)
    assert combined is not None and combined["operator"] == "AND"
    scope, rest = split_access(combined)
    assert scope == AccessScope(frozenset({"hr"}), True) and rest == FINANCE_OR
    assert split_access(FINANCE_OR) == (None, FINANCE_OR)  # a caller's own filter is never taken for a scope
    assert HR.admits(["hr", "x"]) and HR.admits([]) and not HR.admits(["finance"])
    assert not HR_DENY.admits(None)
    # Elasticsearch gets the same rule: the groups as a terms query, unmarked as a missing field
    es = to_es_filter(HR.filter() or {})
    assert es == {
        "bool": {
            "should": [{"terms": {"access": ["hr"]}}, {"bool": {"must_not": [{"exists": {"field": "access"}}]}}],
            "minimum_should_match": 1,
        }
    }


@pytest.mark.parametrize(
    "client_filter",
    [
        None,
        FINANCE_OR,
        {"operator": "OR", "conditions": [FINANCE_OR, {"field": "meta.source", "operator": "!=", "value": "x"}]},
        {"operator": "NOT", "conditions": [{"field": "meta.access", "operator": "in", "value": ["hr"]}]},
    ],
)
def test_the_embedded_store_applies_the_scope_in_every_search(
    store: EmbeddedDocumentStore, client_filter: dict | None
) -> None:
    filters = HR.restrict(client_filter)
    found = set()
    found |= _ids(store.bm25_retrieval("budget zorblax", top_k=50, filters=filters))
    found |= _ids(store.weighted_bm25_retrieval([("budget", 0.5), ("zorblax", 0.5)], top_k=50, filters=filters))
    found |= _ids(store.embedding_retrieval(_doc(1, "", None).embedding or [], top_k=50, filters=filters))
    found |= _ids(store.filter_documents(filters))
    assert not found & {"d1", "d2"}
    if client_filter is None:
        assert found == {"d3", "d4", "d5"}


def test_deny_hides_unmarked_documents_and_admins_see_all(store: EmbeddedDocumentStore) -> None:
    assert _ids(store.bm25_retrieval("budget", top_k=50, filters=HR_DENY.filter())) == {"d3"}
    vec = _doc(9, "", None).embedding or []
    assert _ids(store.embedding_retrieval(vec, top_k=50, filters=HR_DENY.filter())) == {"d3"}
    assert _ids(store.bm25_retrieval("budget", top_k=50)) == {"d1", "d2", "d3", "d4", "d5"}
    board = AccessScope.of_groups(["board"], AccessDefault.DENY)
    assert _ids(store.bm25_retrieval("budget", top_k=50, filters=board.filter())) == {"d2"}
    nobody = AccessScope.of_groups([], AccessDefault.DENY)
    assert store.bm25_retrieval("budget", top_k=50, filters=nobody.filter()) == []
    assert store.embedding_retrieval(vec, top_k=50, filters=nobody.filter()) == []


def test_without_a_scope_a_serving_process_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import ragship.access.scope as scope_module

    assert current_scope().unrestricted  # the CLI and notebooks: a local admin
    monkeypatch.setattr(scope_module, "_served", True)
    with pytest.raises(Exception, match="No access scope"):
        current_scope()
    with scope_module.acting_as(HR):
        assert current_scope() is HR


def test_marks_front_matter_html_jsonl_and_rules() -> None:
    assert front_matter_access("---\ntitle: Q3\naccess: [finance, board]\n---\n# Q3\n", "q3.md") == [
        "board",
        "finance",
    ]
    assert front_matter_access("---\naccess: hr\n---\ntext", "a.md") == ["hr"]
    assert front_matter_access('<html><meta name="access" content="hr,finance"></html>', "a.html") == [
        "finance",
        "hr",
    ]
    assert front_matter_access("# no marks\n", "a.md") is None
    with pytest.raises(ConversionError, match="'access' must be a list"):
        front_matter_access("---\naccess: {a: 1}\n---\n", "bad.md")
    rules = {"reports/finance/**": ["finance"], "reports/*": ["staff"]}
    assert rule_access("reports/finance/2026/q3.md", rules) == ["finance"]
    assert rule_access("reports/x.md", rules) == ["staff"]
    assert rule_access("docs/x.md", rules) is None
    assert rules_fingerprint("docs/x.md", rules) == ""
    assert rules_fingerprint("reports/x.md", rules) != rules_fingerprint("reports/x.md", {"reports/*": ["hr"]})
    jsonl = b'{"text": "a", "access": ["finance"]}\n{"text": "b", "access": "hr"}\n{"text": "c"}\n'
    assert declared_groups("r.jsonl", jsonl, {}) == {"finance", "hr"}
    assert declared_groups("reports/finance/a.md", b"# no mark", rules) == {"finance"}
    assert declared_groups("reports/finance/a.md", b"---\naccess: [hr]\n---\n", rules) == {"hr"}


def test_the_converter_marks_each_document(tmp_path: Path) -> None:
    from ragship.components.converters import FileConverter

    converter = FileConverter()
    converter.access_rules = {"rules/*": ["staff"]}
    (tmp_path / "rules").mkdir()
    files = {
        "a.md": "---\naccess: [finance]\n---\n# A\n\ntext",
        "b.jsonl": json.dumps({"text": "one", "access": ["hr"]})
        + "\n"
        + json.dumps({"text": "two", "meta": {"access": ["finance"]}})  # only the record's own field counts
        + "\n",
        "rules/c.md": "# C\n\nplain",
        "d.md": "# D\n\nplain",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = converter.run(sources=[tmp_path / n for n in files], source_names=list(files))
    assert not out["failures"]
    marks = [(d.meta["source"], d.meta.get("access")) for d in out["documents"]]
    assert marks == [
        ("a.md", ["finance"]),
        ("b.jsonl", ["hr"]),
        ("b.jsonl", None),
        ("rules/c.md", ["staff"]),
        ("d.md", None),
    ]


def test_keys_are_stored_hashed_checked_by_id_and_revoked(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = KeysFile(path, reload_ms=0)
    key = keys.add("alice", ["finance", "staff"], ["query", "feedback"])
    other = keys.add("bob", ["hr"], ["index"])
    assert key.startswith("rs_") and key not in path.read_text() and key.split("_", 2)[2] not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    alice = keys.principal(key)
    assert alice == Principal("alice", frozenset({"finance", "staff"}), frozenset({Scope.QUERY, Scope.FEEDBACK}))
    assert keys.principal(other).name == "bob"
    for wrong in (key[:-2] + "xx", "rs_000000000000_abc", "rs_", key.replace("rs_", "rs_ff")):
        with pytest.raises(AuthenticationError):
            keys.principal(wrong)
    listed = [e.public() for e in keys.entries()]
    assert [e["name"] for e in listed] == ["alice", "bob"] and all("hash" not in e for e in listed)
    # another process (replica) reading the same file refuses the key once it is revoked
    replica = KeysFile(path, reload_ms=0)
    assert replica.principal(key).name == "alice"
    assert KeysFile(path).revoke("alice") == 1
    with pytest.raises(AuthenticationError):
        replica.principal(key)
    with pytest.raises(AuthenticationError):
        keys.principal(key)
    assert keys.principal(other).name == "bob"


def test_scopes_and_groups_of_a_principal() -> None:
    p = Principal("bob", frozenset({"hr"}), frozenset({Scope.INDEX}))
    with pytest.raises(PermissionDeniedError, match="'query' scope"):
        p.require(Scope.QUERY)
    p.require(Scope.INDEX)
    p.require_groups(["hr"], "a.md")
    with pytest.raises(PermissionDeniedError, match="finance"):
        p.require_groups(["finance", "hr"], "q3.md")
    admin = Principal.admin("root")
    admin.require(Scope.INDEX)
    admin.require_groups(["finance"], "q3.md")
    assert admin.access(AccessDefault.DENY).unrestricted
    assert p.access(AccessDefault.DENY) == AccessScope(frozenset({"hr"}), False, "bob")


def test_limits_refuse_over_rate_with_a_wait_then_recover(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    limits = PrincipalLimits(per_minute=3, concurrent=2)
    for _ in range(3):
        with limits.request("a"):
            pass
    with pytest.raises(RateLimitedError) as refused, limits.request("a"):
        pass
    assert refused.value.retry_after_s == 20
    with limits.request("b"):  # one principal's bucket is its own
        pass
    clock[0] += 20
    with limits.request("a"):
        pass
    clock[0] += 60
    with limits.request("a"), limits.request("a"), pytest.raises(RateLimitedError, match="in flight"):
        limits.request("a").__enter__()


def test_the_hourly_submission_cap_counts_over_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cap = PrincipalLimits(2, 0, period_s=3600, what="index submissions per hour")
    for _ in range(2):
        with cap.request("bob"):
            pass
    with pytest.raises(RateLimitedError, match="2 index submissions per hour; retry in 1800 s") as refused:
        cap.request("bob").__enter__()
    assert refused.value.retry_after_s == 1800


def test_routes_need_their_scope_and_unlisted_ones_need_admin() -> None:
    from ragship.serving.access_guard import scope_for

    assert scope_for("/ask") == scope_for("/retrieve") == scope_for("/v1/chat/completions") == Scope.QUERY
    assert scope_for("/mcp") == Scope.QUERY
    assert scope_for("/index/submit") == Scope.INDEX and scope_for("/feedback") == Scope.FEEDBACK
    assert scope_for("/index/jobs") == scope_for("/feedback/export") == scope_for("/new-route") == Scope.ADMIN


def test_tokens_are_checked_against_a_jwks_file(tmp_path: Path) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ragship.access.tokens import TokenVerifier
    from ragship.settings import AuthSettings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]}))
    verifier = TokenVerifier(
        AuthSettings(jwks_file=tmp_path / "jwks.json", issuer="https://idp", audience="ragship", groups_claim="roles")
    )
    now = int(time.time())
    claims = {"iss": "https://idp", "aud": "ragship", "sub": "carol", "roles": "hr,staff", "exp": now + 60}

    def token(kid: str = "k1", **changes: object) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="RS256", headers={"kid": kid})

    carol = verifier.principal(token(scope="openid query"))
    assert carol == Principal("carol", frozenset({"hr", "staff"}), frozenset({Scope.QUERY}))
    assert verifier.principal(token()).scopes == {Scope.QUERY, Scope.FEEDBACK}  # the default scopes
    for bad, words in (
        (token(aud="other"), "(?i)audience"),
        (token(iss="https://evil"), "(?i)issuer"),
        (token(exp=now - 300), "(?i)expired"),
        (token(kid="k2"), "kid"),
        (token()[:-4] + "AAAA", "Signature"),
    ):
        with pytest.raises(AuthenticationError, match=words):
            verifier.principal(bad)
