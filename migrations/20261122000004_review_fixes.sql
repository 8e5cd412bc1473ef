-- Fixes from the security review of the sign-in and audit path.

-- Sessions carry the epoch they were signed in under; disabling someone or resetting their
-- password bumps it, ending every session they hold (including after a re-enable).
ALTER TABLE staff ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;

-- The chain trigger runs with its owner's rights: pin its search path so that a temporary
-- table named audit_chain_head cannot stand in for the real one (pg_temp is otherwise
-- searched first).
ALTER FUNCTION audit_events_chain() SET search_path = pg_catalog, public, pg_temp;

-- A production server running as staff_console_app checks the schema version at start.
-- (Conditional: tooling that applies these files without sqlx has no such table.)
DO $$
BEGIN
    IF to_regclass('public._sqlx_migrations') IS NOT NULL THEN
        GRANT SELECT ON public._sqlx_migrations TO staff_console_app;
    END IF;
END
$$;
