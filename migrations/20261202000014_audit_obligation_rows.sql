-- The audit obligation (migration 13), second version: held where the application role
-- cannot reach it, owed by TRUNCATE too, and safe from overloads.
--
-- - Migration 13 kept "this transaction is marked" and "this transaction wrote an event"
--   in transaction-local settings, and honoured `staff_console.unaudited` from anyone.
--   Settings are the session's own: the application role could set them itself and commit
--   an audited change with no event. Now the mark and the event are both a row of
--   `audit_obligations` (owner-only): the first audited statement inserts the
--   transaction's row, the first insert into the log sets its `met` (inserting the row if
--   the event came first, as `record_first` does), and the check at commit reads the row.
-- - `staff_console.unaudited` is honoured only for a session that can act as the schema
--   owner (the owner itself, a superuser: data migrations, test fixtures), never for the
--   application role.
-- - TRUNCATE fires no row or INSERT/UPDATE/DELETE trigger, so it emptied an audited table
--   without owing an event. The application role holds no TRUNCATE right on these tables;
--   a session of the owner truncating one now owes an event like any other change. A
--   TRUNCATE of several tables, or one that cascades, fires the trigger on each.
-- - The marking functions run as the owner (SECURITY DEFINER) and called
--   `audit_mark(TG_TABLE_NAME)` with an argument of type `name`: a role able to create
--   functions in `public` could add `public.audit_mark(name)`, the better match, and run
--   its own code as the owner. They now call functions by schema, with exact types.
-- - Tokens were compared by pairing old and new rows on `id`, which missed an update of the
--   id itself (a rename could revive a revoked token unaudited); they are compared as
--   multisets now.
--
-- Safe during a rolling upgrade: the older binary writes every change with its event in
-- one transaction, which these functions accept as the old ones did; the new triggers are
-- on a statement no binary runs.

ALTER TABLE audit_obligations ALTER COLUMN first_table DROP NOT NULL;
ALTER TABLE audit_obligations ADD COLUMN met boolean NOT NULL DEFAULT false;

-- The mark: this transaction's row, if it has none yet.
CREATE OR REPLACE FUNCTION audit_mark(changed_table text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.audit_obligations (txid, first_table)
    VALUES (txid_current(), changed_table)
    ON CONFLICT (txid) DO UPDATE SET first_table = excluded.first_table
        WHERE audit_obligations.first_table IS NULL;
END
$$;

CREATE OR REPLACE FUNCTION audit_oblige() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;

-- Tokens: the statement's new rows, less the ledger's bookkeeping, against its old rows,
-- as multisets: any row that is not an old row with only `last_used_*` or `revision`
-- changed owes an event. Pairing rows by `id` (migration 13) missed an update of the id
-- itself, which let a rename revive a revoked token unaudited. `to_jsonb` by its schema:
-- an overload `public.to_jsonb(record)` would be the better match for a row.
CREATE OR REPLACE FUNCTION audit_oblige_tokens() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (
           SELECT pg_catalog.to_jsonb(n) - ARRAY['last_used_at', 'last_used_ip', 'revision']
           FROM changed_new n
           EXCEPT ALL
           SELECT pg_catalog.to_jsonb(o) - ARRAY['last_used_at', 'last_used_ip', 'revision']
           FROM changed_old o
       ) THEN
        PERFORM public.audit_mark(TG_TABLE_NAME::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION audit_oblige_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM public.audit_mark(TG_TABLE_NAME::text);
    RETURN NULL;
END
$$;

-- An audit event inserted in the transaction meets its obligation; an insert that wrote
-- no row does not. Runs as the owner now: the row it sets is out of the caller's reach.
CREATE OR REPLACE FUNCTION audit_written() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written) THEN
        INSERT INTO public.audit_obligations (txid, met) VALUES (txid_current(), true)
        ON CONFLICT (txid) DO UPDATE SET met = true WHERE NOT audit_obligations.met;
    END IF;
    RETURN NULL;
END
$$;

-- At commit: the transaction's row says whether an event was written (read again here:
-- the trigger's own copy of the row is as it was inserted).
CREATE OR REPLACE FUNCTION audit_obligation_met() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    obligation public.audit_obligations;
BEGIN
    DELETE FROM public.audit_obligations WHERE txid = NEW.txid RETURNING * INTO obligation;
    IF obligation.first_table IS NOT NULL AND NOT obligation.met
       AND NOT (coalesce(current_setting('staff_console.unaudited', true), '') <> ''
                AND pg_has_role(session_user, current_user, 'USAGE')) THEN
        RAISE EXCEPTION 'unaudited change: % was written in a transaction that recorded no audit event',
            obligation.first_table
            USING ERRCODE = 'integrity_constraint_violation',
                  CONSTRAINT = 'audit_obligation_met',
                  HINT = 'Make the change through Actor::change() and Change::commit(event).';
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION audit_mark(text), audit_oblige(), audit_oblige_tokens(),
    audit_oblige_truncate(), audit_written(), audit_obligation_met() FROM PUBLIC;

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
