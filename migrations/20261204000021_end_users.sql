-- End users of each tenant (issue 17, runbooks 000 and 004): accounts, their sessions and
-- refresh tokens, and the revocation epochs that end every session of a user or of a
-- tenant in one row.

-- End users' sign-ins, refreshes and revocations are audited as their own plane.
ALTER TYPE audit_source ADD VALUE 'identity';

-- A tenant's revocation epoch: access tokens issued at or before it are refused, and
-- sessions created before it can no longer refresh.
ALTER TABLE tenants ADD COLUMN sessions_not_before timestamptz;

CREATE TYPE end_user_state AS ENUM ('active', 'needs_password_reset', 'locked', 'deleted');

CREATE TABLE end_users (
    id              uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid           NOT NULL REFERENCES tenants (id),
    email           text           NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash   text,
    state           end_user_state NOT NULL DEFAULT 'active',
    -- The user's revocation epoch (as the tenant's, for this user alone).
    not_before      timestamptz,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    updated_at      timestamptz    NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);
CREATE INDEX end_users_not_before ON end_users (not_before) WHERE not_before IS NOT NULL;
CREATE INDEX end_users_tenant_state ON end_users (tenant_id, state, email);

-- A signed-in session: the family of refresh tokens it rotates through.
CREATE TABLE end_user_sessions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    user_id      uuid        NOT NULL REFERENCES end_users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    ip           inet,
    user_agent   text        CHECK (length(user_agent) <= 512),
    -- Marked in the background after a revocation epoch, or at once by reuse detection.
    ended_at     timestamptz,
    end_reason   text        CHECK (length(end_reason) <= 64),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX end_user_sessions_user ON end_user_sessions (user_id, created_at DESC);
CREATE INDEX end_user_sessions_live ON end_user_sessions (tenant_id, created_at) WHERE ended_at IS NULL;
-- Sessions ended one by one (a reuse detected): every instance refuses their access tokens
-- at once, not at their expiry (notified, and polled from here).
CREATE INDEX end_user_sessions_reused ON end_user_sessions (ended_at) WHERE end_reason = 'reuse_detected';

-- Refresh tokens (`mf_rt_v1.<id>.<secret>`): only HMAC-SHA256(pepper, secret) is kept.
-- Each use rotates: the token is marked used and its successor inserted. For the grace
-- window after a use, the successor's token is kept sealed under ENCRYPTION_KEY so a
-- second use (parallel tabs) gets the same answer; after it the sealed copy is erased and
-- a second use revokes the family (reuse detection).
CREATE TABLE refresh_tokens (
    id               text        PRIMARY KEY CHECK (length(id) BETWEEN 10 AND 24),
    session_id       uuid        NOT NULL REFERENCES end_user_sessions (id),
    secret_hash      bytea       NOT NULL CHECK (length(secret_hash) = 32),
    pepper_version   integer     NOT NULL REFERENCES token_peppers (version),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    successor_id     text        REFERENCES refresh_tokens (id),
    successor_nonce  bytea       CHECK (length(successor_nonce) = 12),
    successor_sealed bytea,
    revoked_at       timestamptz,
    CHECK ((successor_nonce IS NULL) = (successor_sealed IS NULL)),
    CHECK (used_at IS NOT NULL OR successor_id IS NULL)
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_grace ON refresh_tokens (used_at) WHERE successor_sealed IS NOT NULL;

-- End-user sign-in attempts not (yet) successful, per caller (an address, an IPv6 /64) and
-- per account (a keyed hash of the tenant and the email typed, known or not: unknown
-- emails lock exactly as known ones, so the lockout tells nothing of who has an account).
-- A row is written before the password is checked, so parallel guesses all count, and
-- deleted with the account's others when a sign-in succeeds. Not audited: counters; each
-- failure is audited as an attempt.
CREATE TABLE end_user_sign_in_failures (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid        NOT NULL REFERENCES tenants (id),
    subject   text        NOT NULL CHECK (length(subject) <= 64),
    account   bytea       NOT NULL CHECK (length(account) = 32),
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX end_user_sign_in_failures_subject ON end_user_sign_in_failures (tenant_id, subject, at);
CREATE INDEX end_user_sign_in_failures_account ON end_user_sign_in_failures (account, at);

GRANT SELECT, INSERT, UPDATE ON end_users TO staff_console_app;
GRANT SELECT, INSERT, UPDATE ON end_user_sessions, refresh_tokens TO staff_console_app;
GRANT SELECT, INSERT, DELETE ON end_user_sign_in_failures TO staff_console_app;

CREATE TRIGGER end_users_audit_insert AFTER INSERT ON end_users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER end_users_audit_update AFTER UPDATE ON end_users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER end_users_audit_delete AFTER DELETE ON end_users
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER end_users_audit_truncate AFTER TRUNCATE ON end_users
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();

-- Every instance hears of a new revocation epoch when it commits, and refuses the access
-- tokens it covers from then on (the instances also poll for epochs they missed).
CREATE FUNCTION end_user_epoch_moved() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('sc_gateway', 'nb:tenant:' || NEW.id::text || ':'
            || floor(extract(epoch FROM NEW.sessions_not_before))::bigint::text);
    ELSE
        PERFORM pg_notify('sc_gateway', 'nb:user:' || NEW.id::text || ':'
            || floor(extract(epoch FROM NEW.not_before))::bigint::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER end_users_epoch_moved AFTER UPDATE OF not_before ON end_users
    FOR EACH ROW WHEN (NEW.not_before IS DISTINCT FROM OLD.not_before AND NEW.not_before IS NOT NULL)
    EXECUTE FUNCTION end_user_epoch_moved();
CREATE FUNCTION end_user_session_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_gateway', 'nb:session:' || NEW.id::text || ':'
        || floor(extract(epoch FROM NEW.ended_at))::bigint::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER end_user_session_ended AFTER UPDATE OF ended_at ON end_user_sessions
    FOR EACH ROW WHEN (OLD.ended_at IS NULL AND NEW.end_reason = 'reuse_detected')
    EXECUTE FUNCTION end_user_session_ended();
CREATE TRIGGER tenants_epoch_moved AFTER UPDATE OF sessions_not_before ON tenants
    FOR EACH ROW WHEN (NEW.sessions_not_before IS DISTINCT FROM OLD.sessions_not_before
                       AND NEW.sessions_not_before IS NOT NULL)
    EXECUTE FUNCTION end_user_epoch_moved();
