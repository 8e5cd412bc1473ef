-- Tenant management and per-tenant signing keys (issue 16, runbooks 000 and 001).

-- What a tenant allows: the audiences a delegated token may be issued for, and the
-- algorithm its new signing keys use. A tenant created from now on has a slug of 2 to 40
-- characters, ending in a letter or digit (NOT VALID: slugs already in paths stay).
ALTER TABLE tenants
    ADD COLUMN allowed_audiences text[] NOT NULL DEFAULT ARRAY['agent-api']
        CHECK (cardinality(allowed_audiences) BETWEEN 1 AND 20),
    ADD COLUMN signing_algorithm text NOT NULL DEFAULT 'ES256'
        CHECK (signing_algorithm IN ('ES256', 'EdDSA')),
    ADD CONSTRAINT tenants_slug_rule
        CHECK (slug ~ '^[a-z][a-z0-9-]{0,38}[a-z0-9]$') NOT VALID;

CREATE TYPE signing_key_state AS ENUM ('staged', 'active', 'retired', 'removed', 'revoked');

-- A tenant's signing key. `kid` is the RFC 7638 thumbprint of the public key (base64url of
-- a SHA-256: 43 characters), so it names the key material itself. The private key is
-- sealed with AES-256-GCM under ENCRYPTION_KEY (bound to its kid and tenant as associated
-- data) and erased when the key can never sign again (removed, revoked). `verify_until`
-- is derived when the key is retired (retired time + longest token lifetime + JWKS
-- max-age + clock skew), never typed.
CREATE TABLE signing_keys (
    kid           text              PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{43}$'),
    tenant_id     uuid              NOT NULL REFERENCES tenants (id),
    algorithm     text              NOT NULL CHECK (algorithm IN ('ES256', 'EdDSA')),
    -- The public JWK as published (kty, crv, x, y; no private member).
    public_jwk    jsonb             NOT NULL CHECK (NOT public_jwk ? 'd'),
    nonce         bytea             CHECK (length(nonce) = 12),
    sealed        bytea,
    state         signing_key_state NOT NULL,
    staged_at     timestamptz       NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    retired_at    timestamptz,
    verify_until  timestamptz,
    removed_at    timestamptz,
    revoked_at    timestamptz,
    revoke_reason text              CHECK (length(revoke_reason) BETWEEN 1 AND 500),
    created_by    text              NOT NULL,
    CHECK ((state IN ('staged', 'active', 'retired')) = (sealed IS NOT NULL AND nonce IS NOT NULL)),
    CHECK (state <> 'active' OR activated_at IS NOT NULL),
    CHECK (state <> 'retired' OR (retired_at IS NOT NULL AND verify_until > retired_at)),
    CHECK (state <> 'removed' OR removed_at IS NOT NULL),
    CHECK ((state = 'revoked') = (revoked_at IS NOT NULL AND revoke_reason IS NOT NULL))
);
-- Exactly one key signs for a tenant (at least one: the code keeps it so, in one change).
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE state = 'active';
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, staged_at DESC);
CREATE INDEX signing_keys_retired ON signing_keys (verify_until) WHERE state = 'retired';

GRANT SELECT, INSERT, UPDATE ON signing_keys TO staff_console_app;

-- Every instance reloads its key set when a key changes.
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway('keys');

CREATE TRIGGER signing_keys_audit_insert AFTER INSERT ON signing_keys
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER signing_keys_audit_update AFTER UPDATE ON signing_keys
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER signing_keys_audit_delete AFTER DELETE ON signing_keys
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER signing_keys_audit_truncate AFTER TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();
