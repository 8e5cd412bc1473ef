-- The database holds the rule "no change without its audit event": a transaction that
-- writes one of the audited tables (the state staff and runbooks change: tenants, staff,
-- peppers, tokens, clients and their keys, switches, limits, blocks, service tokens) and
-- writes no audit event is refused when it commits.
--
-- How: the first statement that changes rows of an audited table marks the transaction (a
-- transaction-local setting holding the transaction's id, so a value set for the session,
-- or by an earlier transaction, is not a mark) and leaves one row in `audit_obligations`;
-- a deferred constraint trigger on that row runs at commit and refuses the transaction
-- unless an audit event was inserted in it (the event's insert sets another such
-- setting). One deferred check per transaction, whatever the number of rows changed. A
-- savepoint rolled back takes its marks with it, as it takes its rows.
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

-- The mark: this transaction's id in a transaction-local setting, and its obligation row.
CREATE FUNCTION audit_mark(changed_table text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM set_config('staff_console.audit_obliged', txid_current()::text, true);
    INSERT INTO audit_obligations (txid, first_table)
    VALUES (txid_current(), changed_table)
    ON CONFLICT (txid) DO NOTHING;
END
$$;

-- Marks the transaction when a statement changed rows of an audited table. Statement level,
-- over the statement's transition table: a statement that changed no row owes nothing, and
-- a bulk change costs one call, not one per row (a row trigger, even one whose WHEN lets
-- only the first row through, cost about 13 µs a row: 100,000 inserts took 2 s, not 0.6).
-- Runs as the schema owner: the application role has no rights on `audit_obligations`.
CREATE FUNCTION audit_oblige() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text
       AND EXISTS (SELECT 1 FROM changed) THEN
        PERFORM audit_mark(TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

-- Tokens: an update owes an event unless it changed only the ledger's bookkeeping
-- (`last_used_*`, and the `revision` a trigger bumps on every update). Compared as whole
-- rows, so a column added later is audited without touching this.
CREATE FUNCTION audit_oblige_tokens() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_setting('staff_console.audit_obliged', true) IS DISTINCT FROM txid_current()::text
       AND EXISTS (
           SELECT 1 FROM changed_new n JOIN changed_old o USING (id)
           WHERE to_jsonb(n) - ARRAY['last_used_at', 'last_used_ip', 'revision']
                 IS DISTINCT FROM to_jsonb(o) - ARRAY['last_used_at', 'last_used_ip', 'revision']
       ) THEN
        PERFORM audit_mark(TG_TABLE_NAME);
    END IF;
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

-- An audit event inserted in the transaction meets the obligation; an insert that wrote no
-- row does not. Statement level, like the marks.
CREATE FUNCTION audit_written() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written) THEN
        PERFORM set_config('staff_console.audit_written', txid_current()::text, true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_written AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION audit_written();

-- Trigger functions only: nobody calls them, or attaches them elsewhere.
REVOKE ALL ON FUNCTION audit_mark(text), audit_oblige(), audit_oblige_tokens(),
    audit_obligation_met(), audit_written() FROM PUBLIC;

-- The audited tables: a trigger per kind of statement (a transition table belongs to one).
DO $$
DECLARE
    audited text[] := ARRAY['tenants', 'staff', 'token_peppers', 'personal_access_tokens',
                            'api_clients', 'client_keys', 'kill_switches',
                            'rate_limit_overrides', 'ip_blocks', 'service_tokens'];
    t text;
BEGIN
    FOREACH t IN ARRAY audited LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_insert', t);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_delete', t);
        IF t = 'personal_access_tokens' THEN
            EXECUTE format(
                'CREATE TRIGGER %I AFTER UPDATE ON %I
                 REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_tokens()',
                t || '_audit_update', t);
        ELSE
            EXECUTE format(
                'CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed
                 FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_update', t);
        END IF;
    END LOOP;
END
$$;
