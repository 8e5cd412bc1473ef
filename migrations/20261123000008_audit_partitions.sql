-- The audit log, partitioned by month and, within a month, by retention class, so that
-- retention is a partition drop and never a mass DELETE.
--
-- Each tenant keeps its events for one of a few periods (its retention class, in months);
-- platform events (no tenant) are kept 84 months. An event's class is fixed when it is
-- written, so `audit_events_2026_08_r3` holds August's events of every tenant on the
-- three-month class and is dropped once they are all older than three months. A handful of
-- classes keeps the partition count independent of the number of tenants.
--
-- Dropping a partition removes events from the middle of the one hash chain. The retention
-- run first records, per run of consecutive removed events, the hash of its last event
-- (`audit_retention_gaps`), so `audit verify` can step over removals that were recorded and
-- still finds any that were not.

ALTER TABLE tenants ADD COLUMN audit_retention_months smallint NOT NULL DEFAULT 12
    CHECK (audit_retention_months IN (1, 3, 6, 12, 24, 84));

-- The class an event of `tenant` is written in.
CREATE FUNCTION audit_retention_for(tenant uuid) RETURNS smallint
LANGUAGE sql STABLE SET search_path = pg_catalog, public AS $$
    SELECT coalesce((SELECT audit_retention_months FROM tenants WHERE id = tenant), 84::smallint)
$$;

-- The old table steps aside; its rows move into the partitioned one below, unchanged.
ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
DROP FUNCTION audit_canonical(audit_events_unpartitioned);

CREATE TABLE audit_events (
    -- seq, ts, prev_hash and hash are set by the chain trigger (ts from the current clock).
    -- seq is unique by construction (assigned under the chain lock); a unique index would
    -- have to include the partition keys, so it is indexed, not constrained.
    seq              bigint        NOT NULL DEFAULT 0,
    ts               timestamptz   NOT NULL DEFAULT clock_timestamp(),
    tenant_id        uuid          REFERENCES tenants (id),
    source           audit_source  NOT NULL,
    actor            text          NOT NULL,
    actor_name       text,
    action           text          NOT NULL,
    outcome          audit_outcome NOT NULL,
    code             text,
    target           text,
    ip               inet,
    user_agent       text,
    request_id       text,
    incident_id      uuid,
    reason           text,
    details          jsonb         NOT NULL DEFAULT '{}'::jsonb,
    prev_hash        bytea         NOT NULL DEFAULT ''::bytea,
    hash             bytea         NOT NULL DEFAULT ''::bytea,
    -- audit_retention_for(tenant_id) when written; the trigger checks it.
    retention_months smallint      NOT NULL
) PARTITION BY RANGE (ts);

-- The same canonical text as before (the new column is not part of it).
CREATE FUNCTION audit_canonical(e audit_events) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        e.seq,
        to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.tenant_id, e.source, e.actor, e.actor_name, e.action, e.outcome, e.code, e.target,
        e.ip, e.user_agent, e.request_id, e.incident_id, e.reason, e.details
    )::text
$$;

-- Creates the partitions of the month holding `at` (UTC) if they are missing.
CREATE FUNCTION audit_ensure_month(at timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET TimeZone = 'UTC'
-- Creating a partition locks the table: wait briefly, never queue every audit write behind
-- a long reader (the caller retries next hour).
SET lock_timeout = '3s' AS $$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month_end   timestamptz := month_start + interval '1 month';
    parent      text := 'audit_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
    class       smallint;
BEGIN
    -- Instances starting together take turns.
    PERFORM pg_advisory_xact_lock(hashtext('staff_console.audit_partitions'));
    IF to_regclass('public.' || parent) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE public.%I PARTITION OF public.audit_events FOR VALUES FROM (%L) TO (%L)
                 PARTITION BY LIST (retention_months)',
            parent, month_start, month_end);
    END IF;
    FOREACH class IN ARRAY ARRAY[1, 3, 6, 12, 24, 84]::smallint[] LOOP
        IF to_regclass('public.' || parent || '_r' || class) IS NULL THEN
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES IN (%s)',
                           parent || '_r' || class, parent, class);
        END IF;
    END LOOP;
END
$$;

-- Makes sure this month and the next `ahead` months have partitions. The server calls it at
-- start and every hour; an insert with no partition to go to fails rather than being lost.
CREATE FUNCTION audit_ensure_partitions(ahead integer DEFAULT 2) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public SET TimeZone = 'UTC' AS $$
    SELECT audit_ensure_month(now() + make_interval(months => m))
    FROM generate_series(0, least(greatest(ahead, 0), 12)) AS m
$$;

-- Partitions for the months the old table covers, then its rows.
SELECT audit_ensure_month(m)
FROM generate_series(
    date_trunc('month', coalesce((SELECT min(ts) FROM audit_events_unpartitioned), now())
                        AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
    now(), interval '1 month') AS m;
SELECT audit_ensure_partitions(2);

INSERT INTO audit_events
SELECT seq, ts, tenant_id, source, actor, actor_name, action, outcome, code, target, ip,
       user_agent, request_id, incident_id, reason, details, prev_hash, hash,
       audit_retention_for(tenant_id)
FROM audit_events_unpartitioned;
DROP TABLE audit_events_unpartitioned;

-- Newest first, with what the histogram counts, so counting is an index-only scan.
CREATE INDEX audit_events_ts ON audit_events (ts DESC, seq DESC) INCLUDE (outcome, source);
-- The deny/error views, which auditors live in.
CREATE INDEX audit_events_refusals ON audit_events (ts DESC, seq DESC) INCLUDE (outcome, source)
    WHERE outcome <> 'success';
-- ...and the same by source and outcome: a deny view of one source, and its histogram,
-- read exactly the matching entries, in order.
CREATE INDEX audit_events_refusals_by_source ON audit_events (source, outcome, ts DESC, seq DESC)
    WHERE outcome <> 'success';
CREATE INDEX audit_events_tenant_ts ON audit_events (tenant_id, ts DESC, seq DESC);
-- Pivots and histories: one actor, address or target.
CREATE INDEX audit_events_actor ON audit_events (actor, ts DESC, seq DESC);
CREATE INDEX audit_events_ip ON audit_events (ip, ts DESC, seq DESC) WHERE ip IS NOT NULL;
CREATE INDEX audit_events_target ON audit_events (target, ts DESC, seq DESC)
    WHERE target IS NOT NULL;
-- The chain order, for `audit verify` and look-ups by position.
CREATE INDEX audit_events_seq ON audit_events (seq);

-- Extends the chain. Within one statement the head is carried in a transaction-local
-- setting and written back once by the statement trigger below, so a bulk insert costs one
-- head update rather than one per row (per-row updates of one row pile up versions and
-- slow a long statement down quadratically). The head row stays locked from the first
-- event until the transaction ends, so concurrent writers queue and the chain never forks.
CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC' AS $$
DECLARE
    carried text := current_setting('staff_console.audit_head', true);
    head_seq bigint;
    head_hash bytea;
    now_ts timestamptz;
BEGIN
    IF carried IS NULL OR carried = '' THEN
        SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE id FOR UPDATE;
    ELSE
        head_seq := split_part(carried, ':', 1)::bigint;
        head_hash := decode(split_part(carried, ':', 2), 'hex');
    END IF;
    IF NEW.retention_months IS DISTINCT FROM audit_retention_for(NEW.tenant_id) THEN
        RAISE EXCEPTION 'audit event retention class % is not its tenant''s (%)',
            NEW.retention_months, audit_retention_for(NEW.tenant_id)
            USING ERRCODE = 'check_violation';
    END IF;
    -- The time is the clock's, not the writer's: the row was routed on the column default,
    -- so only a time within that month may replace it (a writer that waited on the lock
    -- across a month boundary keeps the default's time).
    now_ts := clock_timestamp();
    IF NEW.ts > now_ts + interval '1 second' OR NEW.ts < now_ts - interval '5 minutes' THEN
        RAISE EXCEPTION 'audit event time must be the current time'
            USING ERRCODE = 'check_violation';
    END IF;
    IF date_trunc('month', now_ts AT TIME ZONE 'UTC') = date_trunc('month', NEW.ts AT TIME ZONE 'UTC') THEN
        NEW.ts := now_ts;
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.hash := sha256(NEW.prev_hash || convert_to(audit_canonical(NEW), 'UTF8'));
    PERFORM set_config('staff_console.audit_head', NEW.seq || ':' || encode(NEW.hash, 'hex'), true);
    RETURN NEW;
END
$$;

-- Ends a statement: checks what it added against the head and moves the head. The
-- setting the row trigger reads is an ordinary session setting, so anyone could set it;
-- this check, not the setting, is what keeps the chain whole: the rows must continue the
-- head exactly (next seq, linked to its hash, each to the one before), or the statement
-- fails.
CREATE FUNCTION audit_events_chain_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    first_seq bigint;
    last_seq bigint;
    last_hash bytea;
    added bigint;
    broken bigint;
BEGIN
    PERFORM set_config('staff_console.audit_head', '', true);
    SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE id FOR UPDATE;
    SELECT min(seq), max(seq), count(*) INTO first_seq, last_seq, added FROM added_rows;
    IF added = 0 THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO broken
    FROM (SELECT seq, prev_hash,
                 lag(seq) OVER (ORDER BY seq) AS before_seq,
                 lag(hash) OVER (ORDER BY seq) AS before_hash
          FROM added_rows) r
    WHERE (before_seq IS NULL AND (seq <> head_seq + 1 OR prev_hash <> head_hash))
       OR (before_seq IS NOT NULL AND (seq <> before_seq + 1 OR prev_hash <> before_hash));
    IF broken > 0 OR first_seq <> head_seq + 1 OR last_seq - first_seq + 1 <> added THEN
        RAISE EXCEPTION 'audit events do not continue the chain head (%)', head_seq
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT hash INTO last_hash FROM added_rows WHERE seq = last_seq;
    UPDATE audit_chain_head SET seq = last_seq, hash = last_hash WHERE id;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();
CREATE TRIGGER audit_events_chain_head AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS added_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_chain_head();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Recorded removals: each run of consecutive events a retention drop removed, with the hash
-- of its last event (what the event after the run links to).
CREATE TABLE audit_retention_gaps (
    from_seq   bigint      NOT NULL,
    to_seq     bigint      NOT NULL,
    last_hash  bytea       NOT NULL,
    partition  text        NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (from_seq),
    CHECK (from_seq <= to_seq)
);
CREATE INDEX audit_retention_gaps_to ON audit_retention_gaps (to_seq);

-- Drops one retention partition whose time has come: records its gaps, drops it, and
-- returns what it removed. Refuses a partition that is not yet due, so the app role can run
-- retention but not choose what it removes. The caller records the audit event in the same
-- transaction.
CREATE FUNCTION audit_drop_partition(part text, as_of timestamptz DEFAULT now())
RETURNS TABLE (removed bigint, first_seq bigint, last_seq bigint, runs bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC' SET lock_timeout = '3s' AS $$
DECLARE
    m text[] := regexp_match(part, '^audit_events_(\d{4})_(\d{2})_r(\d+)$');
    month_end timestamptz;
    class integer;
BEGIN
    IF m IS NULL OR to_regclass('public.' || part) IS NULL THEN
        RAISE EXCEPTION 'no audit partition named %', part USING ERRCODE = 'undefined_table';
    END IF;
    class := m[3]::integer;
    month_end := make_timestamptz(m[1]::integer, m[2]::integer, 1, 0, 0, 0, 'UTC') + interval '1 month';
    IF month_end + make_interval(months => class) > as_of OR as_of > now() THEN
        RAISE EXCEPTION 'audit partition % is kept until %', part, month_end + make_interval(months => class)
            USING ERRCODE = 'check_violation';
    END IF;
    EXECUTE format(
        'INSERT INTO audit_retention_gaps (from_seq, to_seq, last_hash, partition)
         SELECT min(seq), max(seq), (array_agg(hash ORDER BY seq DESC))[1], %L
         FROM (SELECT seq, hash, seq - row_number() OVER (ORDER BY seq) AS run FROM public.%I) r
         GROUP BY run', part, part);
    GET DIAGNOSTICS runs = ROW_COUNT;
    EXECUTE format('SELECT count(*), min(seq), max(seq) FROM public.%I', part)
        INTO removed, first_seq, last_seq;
    EXECUTE format('DROP TABLE public.%I', part);
    -- The month's own partition goes with its last retention class.
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                   WHERE inhparent = to_regclass('public.audit_events_' || m[1] || '_' || m[2])) THEN
        EXECUTE format('DROP TABLE public.%I', 'audit_events_' || m[1] || '_' || m[2]);
    END IF;
    RETURN NEXT;
END
$$;

-- The retention partitions that are due, oldest first.
CREATE FUNCTION audit_due_partitions(as_of timestamptz DEFAULT now())
RETURNS TABLE (part text, kept_until timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, public SET TimeZone = 'UTC' AS $$
    SELECT c.relname::text, u.kept_until
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_inherits top ON top.inhrelid = p.oid AND top.inhparent = 'audit_events'::regclass
    CROSS JOIN LATERAL regexp_match(c.relname, '^audit_events_(\d{4})_(\d{2})_r(\d+)$') AS m
    CROSS JOIN LATERAL (SELECT make_timestamptz(m[1]::integer, m[2]::integer, 1, 0, 0, 0, 'UTC')
                               + interval '1 month' + make_interval(months => m[3]::integer)
                               AS kept_until) u
    WHERE m IS NOT NULL AND u.kept_until <= as_of
    ORDER BY u.kept_until, c.relname
$$;

REVOKE ALL ON FUNCTION audit_ensure_month(timestamptz), audit_ensure_partitions(integer),
    audit_drop_partition(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_ensure_partitions(integer), audit_drop_partition(text, timestamptz)
    TO staff_console_app;
GRANT SELECT, INSERT ON audit_events TO staff_console_app;
GRANT SELECT ON audit_retention_gaps TO staff_console_app;
