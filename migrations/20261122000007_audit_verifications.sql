-- Runs of `staff-console audit verify`: which stretch of the chain was checked, when, and
-- what was found. The audit panel shows the last one.
CREATE TABLE audit_verifications (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    from_seq    bigint      NOT NULL,
    to_seq      bigint      NOT NULL,
    checked     bigint      NOT NULL CHECK (checked >= 0),
    -- The hash of event to_seq as verified: the next run checks it is still there, so a
    -- chain cut back and re-headed below it is found.
    to_hash     bytea,
    -- The first event that does not hold, and why; NULL when the stretch is intact.
    broken_seq  bigint,
    problem     text,
    run_by      text        NOT NULL,
    CHECK ((broken_seq IS NULL) = (problem IS NULL))
);

GRANT SELECT, INSERT ON audit_verifications TO staff_console_app;
