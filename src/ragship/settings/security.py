"""Settings of who may see what: OIDC bearer tokens and the access groups of documents. Part of
:mod:`ragship.settings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragship.enums import AccessDefault


class AuthSettings(BaseModel):
    """Bearer tokens (JWTs) from an OIDC provider: where its signing keys are and which claims to trust."""

    model_config = ConfigDict(extra="forbid")

    jwks_url: str | None = Field(
        None, pattern=r"(?i)^https?://\S+$", description="The provider's JWKS URL (its jwks_uri); wins over jwks_file."
    )
    jwks_file: Path | None = Field(None, description="A JWKS JSON file (keys mounted from a Secret).")
    issuer: str | None = Field(None, description="Required `iss` of tokens; tokens are refused while it is unset.")
    audience: str | None = Field(None, description="Required `aud` of tokens (the client id of ragship).")
    groups_claim: str = Field("groups", description="Claim holding the principal's groups (a list or a string).")
    name_claim: str = Field("sub", description="Claim naming the principal in job and feedback records.")
    scopes_claim: str = Field("scope", description="Claim holding ragship scopes (space-separated or a list).")
    default_scopes: list[str] = Field(
        ["query", "feedback"], description="Scopes of a token whose scopes claim names none of ragship's."
    )
    algorithms: list[str] = Field(["RS256", "ES256"], description="Signature algorithms accepted.")
    leeway_s: int = Field(30, ge=0, le=600, description="Clock skew allowed on exp / nbf.")

    @property
    def enabled(self) -> bool:
        """Whether bearer JWTs are checked at all (a key source and an issuer are set)."""
        return bool((self.jwks_url or self.jwks_file) and self.issuer)


class AccessSettings(BaseModel):
    """Which groups may read a document: marks in the document win, then path rules, then the default."""

    model_config = ConfigDict(extra="forbid")

    default: AccessDefault = Field(
        AccessDefault.PUBLIC, description="What a document with no groups is: public (everyone) or deny (admins)."
    )
    rules: dict[str, list[str]] = Field(
        {},
        description="Glob on the source name -> groups, for files that carry no access mark, e.g. "
        '{"reports/finance/**": ["finance"]}; the first matching glob wins.',
    )
