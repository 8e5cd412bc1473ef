-- Hardening of the audit log's database side (security review).

-- 1. Search paths. A function that runs with its owner's rights (SECURITY DEFINER), or
-- that such a function calls, must not resolve names through the caller's temporary
-- schema: pg_temp is searched first unless it is named, so a caller's temporary table
-- or function named like ours (tenants, audit_events, audit_retention_for) would stand in
-- for the real one. Every one of them pins pg_temp last.
ALTER FUNCTION audit_retention_for(uuid) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION audit_ensure_month(timestamptz) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION audit_ensure_partitions(integer) SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION audit_due_partitions(timestamptz) SET search_path = pg_catalog, public, pg_temp;

-- 2. Verification runs are recorded by the verifier's function only. The app role could
-- insert any row into audit_verifications, such as an "intact up to event N with hash H"
-- for a hash the chain never had, which the next run trusts as its anchor. The function
-- checks what a run may claim: an intact run's last hash must be the stored hash of its
-- last event, the stretch must lie within the chain, and the finish time is the clock's.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_verifications FROM staff_console_app;

CREATE FUNCTION audit_record_verification(
    started_at timestamptz,
    from_seq bigint,
    to_seq bigint,
    checked bigint,
    to_hash bytea,
    broken_seq bigint,
    problem text,
    run_by text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    head_seq bigint;
    stored bytea;
    recorded bigint;
BEGIN
    IF started_at > now() THEN
        RAISE EXCEPTION 'a verification cannot start in the future' USING ERRCODE = 'check_violation';
    END IF;
    IF from_seq < 1 OR checked < 0 OR length(run_by) = 0 THEN
        RAISE EXCEPTION 'malformed verification run' USING ERRCODE = 'check_violation';
    END IF;
    -- What an intact run claims is checked; a broken run names what it found (a head
    -- behind the stretch, a missing event) and is recorded as it is.
    IF broken_seq IS NULL THEN
        SELECT h.seq INTO head_seq FROM audit_chain_head h;
        IF to_seq > head_seq THEN
            RAISE EXCEPTION 'an intact verification cannot reach past the chain head (%)', head_seq
                USING ERRCODE = 'check_violation';
        END IF;
        IF to_hash IS NOT NULL THEN
            SELECT e.hash INTO stored FROM audit_events e WHERE e.seq = to_seq;
            IF stored IS DISTINCT FROM to_hash THEN
                RAISE EXCEPTION 'event % does not have the hash this run claims to have verified', to_seq
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END IF;
    INSERT INTO audit_verifications
        (started_at, from_seq, to_seq, checked, to_hash, broken_seq, problem, run_by)
    VALUES (started_at, from_seq, to_seq, checked, to_hash, broken_seq, problem, run_by)
    RETURNING id INTO recorded;
    RETURN recorded;
END
$$;

REVOKE ALL ON FUNCTION audit_record_verification(timestamptz, bigint, bigint, bigint, bytea,
    bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_record_verification(timestamptz, bigint, bigint, bigint, bytea,
    bigint, text, text) TO staff_console_app;
