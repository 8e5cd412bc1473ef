-- A platform-wide freeze of high-risk operations (issue 15, runbook 001), and an
-- authenticator app's set-up tied to the session that started it.

-- While a freeze is on (not lifted, not past its expiry), operations that add access or
-- remove a protection are refused for everyone (423 FROZEN). At most one is on at a time.
-- `lifted_by` is a person's email, or `system` when the expiry lifted it.
CREATE TABLE freezes (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    reason      text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    started_by  text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz CHECK (expires_at > started_at),
    lifted_at   timestamptz,
    lifted_by   text,
    lift_reason text        CHECK (length(lift_reason) <= 500),
    CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
);
CREATE UNIQUE INDEX freezes_one_on ON freezes ((true)) WHERE lifted_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON freezes TO staff_console_app;

-- Every instance reloads its switch snapshot (which carries the freeze, for the switches
-- API and the top bar) when a freeze starts or is lifted.
CREATE TRIGGER freezes_changed AFTER INSERT OR UPDATE OR DELETE ON freezes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway('switches');

-- The session that started setting up an authenticator app: only that session can confirm
-- it, so another session holding the same password cannot swap in a secret of its own
-- while the owner is half-way through.
ALTER TABLE staff_totp ADD COLUMN staged_in uuid REFERENCES staff_sessions (id);

CREATE TRIGGER freezes_audit_insert AFTER INSERT ON freezes REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER freezes_audit_update AFTER UPDATE ON freezes REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER freezes_audit_delete AFTER DELETE ON freezes REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER freezes_audit_truncate AFTER TRUNCATE ON freezes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();
