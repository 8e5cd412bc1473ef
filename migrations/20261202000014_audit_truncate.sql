-- TRUNCATE fires no row or INSERT/UPDATE/DELETE trigger, so it emptied an audited table
-- without owing an event. The application role holds no TRUNCATE right on these tables;
-- the owner does, and a maintenance session truncating one now owes an audit event like
-- any other change (or says why it owes none: `SET LOCAL staff_console.unaudited`).
-- Safe during a rolling upgrade: new triggers only, on a statement no binary runs.

CREATE FUNCTION audit_oblige_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text THEN
        PERFORM audit_mark(TG_TABLE_NAME);
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
