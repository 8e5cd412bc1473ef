-- Admin API tokens (issue 18, runbooks 000 and 001): a staff member's scoped, expiring
-- token for runbook automation (`mf_adm_v1.<id>.<secret>`). Only HMAC-SHA256(pepper,
-- secret) is kept. A token acts as its owner: a disabled owner, or one whose role no longer
-- allows a scope, is refused at once (checked on every call against the staff row).
CREATE TABLE admin_tokens (
    id             text        PRIMARY KEY CHECK (length(id) BETWEEN 10 AND 24),
    owner_id       uuid        NOT NULL REFERENCES staff (id),
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes         text[]      NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 10),
    -- The one tenant it may act on; NULL: the platform (admins only).
    tenant_id      uuid        REFERENCES tenants (id),
    secret_hash    bytea       NOT NULL CHECK (length(secret_hash) = 32),
    pepper_version integer     NOT NULL REFERENCES token_peppers (version),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    last_used_at   timestamptz,
    last_used_ip   inet,
    revoked_at     timestamptz,
    revoked_by     text        CHECK (length(revoked_by) <= 400),
    CHECK (expires_at > created_at AND expires_at <= created_at + interval '90 days 1 minute'),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX admin_tokens_owner ON admin_tokens (owner_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON admin_tokens TO staff_console_app;

-- Audited: minting and revoking; an update of the last use alone (`last_used_*`) owes no
-- event, as for personal access tokens: each call is audited by the change it makes.
CREATE TRIGGER admin_tokens_audit_insert AFTER INSERT ON admin_tokens
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER admin_tokens_audit_update AFTER UPDATE ON admin_tokens
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_tokens();
CREATE TRIGGER admin_tokens_audit_delete AFTER DELETE ON admin_tokens
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER admin_tokens_audit_truncate AFTER TRUNCATE ON admin_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();
