-- Two changes to the audit obligation (migration 13).
--
-- 1. TRUNCATE fires no row or INSERT/UPDATE/DELETE trigger, so it emptied an audited table
--    without owing an event. The application role holds no TRUNCATE right on these
--    tables; the owner does, and a maintenance session truncating one now owes an audit
--    event like any other change (or says why it owes none: `SET LOCAL
--    staff_console.unaudited`). A TRUNCATE of several tables, or one that cascades, fires
--    the trigger on each table: the first marks the transaction.
--
-- 2. The marking functions run as the schema owner (SECURITY DEFINER) and called
--    `audit_mark(TG_TABLE_NAME)` with an argument of type `name`: a role able to create
--    functions in `public` could add `public.audit_mark(name)`, which PostgreSQL would
--    prefer as the exact match, and run its own code as the owner. They now call the
--    function by its schema with a `text` argument, which only ours matches.
--
-- Safe during a rolling upgrade: new triggers, and functions replaced with the same
-- behaviour and signatures.

CREATE OR REPLACE FUNCTION audit_oblige() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text
       AND EXISTS (SELECT 1 FROM changed) THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION audit_oblige_tokens() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text
       AND EXISTS (
           SELECT 1 FROM changed_new n JOIN changed_old o USING (id)
           WHERE to_jsonb(n) - ARRAY['last_used_at', 'last_used_ip', 'revision']
                 IS DISTINCT FROM to_jsonb(o) - ARRAY['last_used_at', 'last_used_ip', 'revision']
       ) THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION audit_oblige_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION audit_oblige_truncate() FROM PUBLIC;

DO $$
DECLARE
    audited text[] := ARRAY['tenants', 'staff', 'token_peppers', 'personal_access_tokens',
                            'api_clients', 'client_keys', 'kill_switches',
                            'rate_limit_overrides', 'ip_blocks', 'service_tokens'];
    t text;
BEGIN
    FOREACH t IN ARRAY audited LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate()',
            t || '_audit_truncate', t);
    END LOOP;
END
$$;
