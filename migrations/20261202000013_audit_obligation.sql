-- The database holds the rule "no change without its audit event": a transaction that
-- writes one of the audited tables (the state staff and runbooks change: tenants, staff,
-- peppers, tokens, clients and their keys, switches, limits, blocks, service tokens) and
-- writes no audit event is refused when it commits.
--
-- How: the first write to an audited table in a transaction marks it (a transaction-local
-- setting holding the transaction's id, so a value set for the session, or by an earlier
-- transaction, is not a mark) and leaves one row in `audit_obligations`; a deferred
-- constraint trigger on that row runs at commit and refuses the transaction unless an
-- audit event was inserted in it (the event's insert sets another such setting). One deferred check per transaction,
-- whatever the number of rows changed: a mass revoke of 100,000 tokens queues one, not
-- 100,000. A savepoint rolled back takes its marks with it, as it takes its rows.
--
-- Not audited on purpose: `personal_access_tokens.last_used_*` (the gateway's ledger
-- writes them in bulk, best effort) and the tables that are not state someone changes
-- (sessions, sign-in failures, the audit chain's own tables).
--
-- The one way around it is explicit and reads as such: `staff_console.unaudited = '<why>'`,
-- with `SET LOCAL` in a data migration's transaction (the migration is recorded in
-- `_sqlx_migrations` instead), or on a connection of a test's fixture alone. The server
-- refuses a connection that has it set (`server/src/db.rs`). The rule is about honest code
-- paths, not a defence against the application role itself, which can insert events.

CREATE TABLE audit_obligations (
    txid        bigint      PRIMARY KEY,
    first_table text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Marks the transaction on its first write to an audited table. Runs as the schema owner:
-- the application role has no rights on `audit_obligations`, so it cannot clear a mark.
CREATE FUNCTION audit_oblige() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM set_config('staff_console.audit_obliged', txid_current()::text, true);
    INSERT INTO audit_obligations (txid, first_table)
    VALUES (txid_current(), TG_TABLE_NAME)
    ON CONFLICT (txid) DO NOTHING;
    RETURN NULL;
END
$$;

-- At commit: the transaction's audit event, or a refusal naming the table.
CREATE FUNCTION audit_obligation_met() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    DELETE FROM audit_obligations WHERE txid = NEW.txid;
    IF current_setting('staff_console.audit_written', true) IS DISTINCT FROM txid_current()::text
       AND coalesce(current_setting('staff_console.unaudited', true), '') = '' THEN
        RAISE EXCEPTION 'unaudited change: % was written in a transaction that recorded no audit event',
            NEW.first_table
            USING ERRCODE = 'integrity_constraint_violation',
                  CONSTRAINT = 'audit_obligation_met',
                  HINT = 'Make the change through Actor::change() and Change::commit(event).';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER audit_obligation_met AFTER INSERT ON audit_obligations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_obligation_met();

-- Any audit event inserted in the transaction meets the obligation: a row trigger, so an
-- insert that writes no row does not count, whose WHEN lets only the transaction's first
-- event call it.
CREATE FUNCTION audit_written() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM set_config('staff_console.audit_written', txid_current()::text, true);
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_written AFTER INSERT ON audit_events FOR EACH ROW
    WHEN (current_setting('staff_console.audit_written', true) IS DISTINCT FROM txid_current()::text)
    EXECUTE FUNCTION audit_written();

-- Trigger functions only: nobody calls them, or attaches them elsewhere.
REVOKE ALL ON FUNCTION audit_oblige(), audit_obligation_met(), audit_written() FROM PUBLIC;

-- The audited tables. Row level with a WHEN that reads the mark, so only a transaction's
-- first row calls the function; later rows cost the comparison.
DO $$
DECLARE
    audited text[] := ARRAY['tenants', 'staff', 'token_peppers', 'api_clients', 'client_keys',
                            'kill_switches', 'rate_limit_overrides', 'ip_blocks',
                            'service_tokens'];
    t text;
BEGIN
    FOREACH t IN ARRAY audited LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I FOR EACH ROW
             WHEN (current_setting(''staff_console.audit_obliged'', true) IS DISTINCT FROM txid_current()::text)
             EXECUTE FUNCTION audit_oblige()',
            t || '_audit_obliged', t);
    END LOOP;
END
$$;

-- Tokens: every column but the ledger's bookkeeping (a column added later joins the list
-- in its own migration, by re-creating this trigger).
DO $$
DECLARE
    columns text;
BEGIN
    SELECT string_agg(quote_ident(column_name::text), ', ' ORDER BY ordinal_position)
    INTO columns
    FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = 'personal_access_tokens'
      AND column_name NOT IN ('last_used_at', 'last_used_ip');
    EXECUTE format(
        'CREATE TRIGGER personal_access_tokens_audit_obliged
         AFTER INSERT OR DELETE OR UPDATE OF %s ON personal_access_tokens FOR EACH ROW
         WHEN (current_setting(''staff_console.audit_obliged'', true) IS DISTINCT FROM txid_current()::text)
         EXECUTE FUNCTION audit_oblige()',
        columns);
END
$$;
