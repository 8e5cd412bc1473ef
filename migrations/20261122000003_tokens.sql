-- Personal access tokens and the peppers their hashes are keyed with.

-- Pepper versions, sealed with AES-256-GCM under ENCRYPTION_KEY (the version is bound in as
-- associated data). One is current; during a staged rotation the one before is previous
-- until grace_until; older ones are retired.
CREATE TABLE token_peppers (
    version     integer     PRIMARY KEY CHECK (version > 0),
    nonce       bytea       NOT NULL CHECK (length(nonce) = 12),
    sealed      bytea       NOT NULL,
    state       text        NOT NULL CHECK (state IN ('current', 'previous', 'retired')),
    grace_until timestamptz CHECK (state <> 'previous' OR grace_until IS NOT NULL),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL
);
CREATE UNIQUE INDEX token_peppers_one_current ON token_peppers ((true)) WHERE state = 'current';
CREATE UNIQUE INDEX token_peppers_one_previous ON token_peppers ((true)) WHERE state = 'previous';

-- Each tenant's longest token lifetime.
ALTER TABLE tenants
    ADD COLUMN max_token_lifetime_days integer NOT NULL DEFAULT 90
        CHECK (max_token_lifetime_days BETWEEN 1 AND 3650);

CREATE TYPE pat_status AS ENUM ('active', 'revoked');

CREATE TABLE personal_access_tokens (
    -- The id inside the token text (Base58 of 12 random bytes).
    id             text        PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    -- A staff member or an API client owns the token.
    owner_kind     text        NOT NULL CHECK (owner_kind IN ('staff', 'client')),
    owner_id       uuid        NOT NULL,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes         text[]      NOT NULL
                               CHECK (cardinality(scopes) >= 1
                                      AND scopes <@ ARRAY['agent:read', 'agent:write', 'payments:write']),
    -- HMAC-SHA256(pepper, secret); the secret itself is never stored.
    secret_hash    bytea       NOT NULL CHECK (length(secret_hash) = 32),
    pepper_version integer     NOT NULL REFERENCES token_peppers (version),
    status         pat_status  NOT NULL DEFAULT 'active',
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     uuid        REFERENCES staff (id),
    last_used_at   timestamptz,
    last_used_ip   inet,
    revoked_at     timestamptz,
    revoked_by     text,
    revoke_reason  text,
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CHECK (status <> 'revoked' OR length(revoke_reason) > 0)
);
CREATE INDEX pats_tenant_created ON personal_access_tokens (tenant_id, created_at DESC, id DESC);
CREATE INDEX pats_owner ON personal_access_tokens (owner_kind, owner_id);
CREATE INDEX pats_pepper_active ON personal_access_tokens (pepper_version) WHERE status = 'active';

GRANT SELECT, INSERT, UPDATE ON token_peppers, personal_access_tokens TO staff_console_app;
