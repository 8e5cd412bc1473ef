-- Staff sign-in, sessions, and the append-only, hash-chained audit log.

-- The role the server should run as in production: it may read and append audit events but
-- never change, delete or truncate them. Migrations run as the schema owner.
DO $$
BEGIN
    CREATE ROLE staff_console_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL; -- another database made it first
END
$$;

-- Staff: the people who use the console. Platform-wide, not per tenant: one incident team
-- works across every tenant, and the tenant switcher moves between them.
CREATE TYPE staff_role AS ENUM ('viewer', 'auditor', 'operator', 'incident_commander', 'admin');
CREATE TYPE staff_status AS ENUM ('active', 'disabled');

CREATE TABLE staff (
    id                  uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text         NOT NULL UNIQUE
                                     CHECK (email = lower(email) AND length(email) <= 254 AND email ~ '^[^@\s]+@[^@\s]+$'),
    display_name        text         NOT NULL CHECK (length(display_name) BETWEEN 1 AND 100),
    password_hash       text         NOT NULL,
    role                staff_role   NOT NULL,
    status              staff_status NOT NULL DEFAULT 'active',
    -- Failed sign-ins in the current window, and when that window started.
    failed_sign_ins     integer      NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
    failed_window_start timestamptz,
    locked_until        timestamptz,
    last_sign_in_at     timestamptz,
    password_changed_at timestamptz  NOT NULL DEFAULT now(),
    created_at          timestamptz  NOT NULL DEFAULT now(),
    created_by          uuid         REFERENCES staff (id),
    updated_at          timestamptz  NOT NULL DEFAULT now()
);

-- Failed sign-ins per source address, for the per-IP throttle. Old rows are pruned.
CREATE TABLE sign_in_failures (
    ip inet        NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_ip_at ON sign_in_failures (ip, at);

-- tower-sessions' PostgreSQL store, created here so the app role needs no CREATE rights.
CREATE SCHEMA tower_sessions;
CREATE TABLE tower_sessions.session (
    id          text        PRIMARY KEY NOT NULL,
    data        bytea       NOT NULL,
    expiry_date timestamptz NOT NULL
);
CREATE INDEX session_expiry ON tower_sessions.session (expiry_date);

-- The audit log.
CREATE TYPE audit_source AS ENUM ('console', 'agent_api', 'admin_api', 'system');
CREATE TYPE audit_outcome AS ENUM ('success', 'deny', 'error');

CREATE TABLE audit_events (
    -- seq, ts, prev_hash and hash are set by the chain trigger; the defaults only let an
    -- INSERT leave them out. seq is the position in the chain, assigned under the chain
    -- lock, so ts never goes backwards along it.
    seq         bigint        PRIMARY KEY DEFAULT 0,
    ts          timestamptz   NOT NULL DEFAULT clock_timestamp(),
    tenant_id   uuid          REFERENCES tenants (id),
    source      audit_source  NOT NULL,
    -- Who acted: "staff:<uuid>", "cli:<user>", "system", "anonymous", later "pat:<id>".
    actor       text          NOT NULL,
    -- A readable name for the actor at the time (an email for staff).
    actor_name  text,
    action      text          NOT NULL,
    outcome     audit_outcome NOT NULL,
    code        text,
    target      text,
    ip          inet,
    user_agent  text,
    request_id  text,
    incident_id uuid,
    reason      text,
    details     jsonb         NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea         NOT NULL DEFAULT ''::bytea,
    hash        bytea         NOT NULL DEFAULT ''::bytea
);
CREATE INDEX audit_events_ts ON audit_events (ts DESC, seq DESC);
CREATE INDEX audit_events_tenant_ts ON audit_events (tenant_id, ts DESC, seq DESC);

-- The head of the chain: one row, locked by each writer, so concurrent writers queue and
-- the chain never forks. Under REPEATABLE READ a concurrent append makes the second writer
-- fail with a serialization error rather than fork.
CREATE TABLE audit_chain_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO audit_chain_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- The exact text each event's hash covers: every field but the hashes, in a fixed order,
-- as JSON (jsonb normalises key order and spacing). `audit verify` recomputes it.
CREATE FUNCTION audit_canonical(e audit_events) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        e.seq,
        to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.tenant_id, e.source, e.actor, e.actor_name, e.action, e.outcome, e.code, e.target,
        e.ip, e.user_agent, e.request_id, e.incident_id, e.reason, e.details
    )::text
$$;

-- Extends the chain: runs with the owner's rights so the app role needs no right on the head.
CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
BEGIN
    SELECT * INTO head FROM audit_chain_head WHERE id FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.ts := clock_timestamp();
    NEW.prev_hash := head.hash;
    NEW.hash := sha256(NEW.prev_hash || convert_to(audit_canonical(NEW), 'UTF8'));
    UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE id;
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE OR DELETE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- What the app role may do.
GRANT SELECT, INSERT ON audit_events TO staff_console_app;
GRANT SELECT ON audit_chain_head TO staff_console_app;
GRANT SELECT, INSERT, UPDATE ON staff, tenants TO staff_console_app;
GRANT SELECT, INSERT, DELETE ON sign_in_failures TO staff_console_app;
GRANT USAGE ON SCHEMA tower_sessions TO staff_console_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tower_sessions.session TO staff_console_app;
