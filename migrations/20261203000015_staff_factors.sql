-- Second factors for staff (issue 15): TOTP and recovery codes, and a row per staff session
-- so a session knows which factor opened it and when it last stepped up, and can be ended
-- from any instance.

-- One authenticator app per person. The secret is sealed with AES-256-GCM under a key
-- derived from ENCRYPTION_KEY, bound to the person's id, so a copy of the database alone
-- cannot compute codes and a sealed secret moved to another person's row does not open.
-- `confirmed_at` is NULL while enrolment waits for the first code. `last_step` is the RFC
-- 6238 time step of the last code accepted: a code is accepted only for a later step
-- (compare-and-set), so a code seen over someone's shoulder cannot be used again.
CREATE TABLE staff_totp (
    staff_id      uuid        PRIMARY KEY REFERENCES staff (id),
    nonce         bytea       NOT NULL CHECK (length(nonce) = 12),
    secret_sealed bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    last_step     bigint      CHECK (last_step >= 0),
    last_used_at  timestamptz
);

-- Single-use recovery codes, stored as HMAC-SHA256 under a key derived from ENCRYPTION_KEY
-- (each code has 50 random bits: a keyed hash keeps a copy of the table from being
-- searched offline). A set is replaced as a whole.
CREATE TABLE staff_recovery_codes (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    staff_id   uuid        NOT NULL REFERENCES staff (id),
    code_hash  bytea       NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX staff_recovery_codes_unused ON staff_recovery_codes (staff_id) WHERE used_at IS NULL;

-- A signed-in staff session. The cookie's session (tower-sessions' store) points at its row;
-- a request whose row is ended is signed out, on every instance, at that request.
CREATE TABLE staff_sessions (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    staff_id      uuid        NOT NULL REFERENCES staff (id),
    -- The person's session epoch at sign-in: a password change or reset, or disabling,
    -- bumps the person's epoch, which ends every session of an older one.
    epoch         integer     NOT NULL,
    -- The second factor that opened the session: `none` only where MFA_REQUIRED=false let a
    -- person without one in (development), or for the enrolment a first sign-in must do.
    factor        text        NOT NULL CHECK (factor IN ('none', 'totp', 'recovery_code', 'passkey')),
    signed_in_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    -- The last time a second factor was used in this session (sign-in or step-up); a
    -- dangerous action needs it within STEP_UP_SECONDS.
    stepped_up_at timestamptz,
    ip            inet,
    user_agent    text        CHECK (length(user_agent) <= 256),
    ended_at      timestamptz,
    ended_by      text,
    end_reason    text        CHECK (length(end_reason) <= 500)
);
CREATE INDEX staff_sessions_live ON staff_sessions (staff_id) WHERE ended_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON staff_totp, staff_recovery_codes TO staff_console_app;
GRANT SELECT, INSERT, UPDATE ON staff_sessions TO staff_console_app;

-- Updates that owe an event unless only the columns named in the trigger's arguments
-- changed (a session's `last_seen_at`, stamped as requests arrive). Old and new rows are
-- compared as multisets, like the tokens' function (migration 14).
CREATE FUNCTION audit_oblige_ignoring() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (
           SELECT pg_catalog.to_jsonb(n) - TG_ARGV::text[] FROM changed_new n
           EXCEPT ALL
           SELECT pg_catalog.to_jsonb(o) - TG_ARGV::text[] FROM changed_old o
       ) THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION audit_oblige_ignoring() FROM PUBLIC;

DO $$
DECLARE
    audited text[] := ARRAY['staff_totp', 'staff_recovery_codes', 'staff_sessions'];
    t text;
BEGIN
    FOREACH t IN ARRAY audited LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_insert', t);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_delete', t);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate()',
            t || '_audit_truncate', t);
        IF t = 'staff_sessions' THEN
            EXECUTE format(
                'CREATE TRIGGER %I AFTER UPDATE ON %I
                 REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_ignoring(%L)',
                t || '_audit_update', t, 'last_seen_at');
        ELSE
            EXECUTE format(
                'CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_update', t);
        END IF;
    END LOOP;
END
$$;
