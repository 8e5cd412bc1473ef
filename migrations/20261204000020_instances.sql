-- Every instance's key set, seen from the console (issue 16, runbook 001), and the key
-- fingerprint of recovery codes (ENCRYPTION_KEY rotation).

-- The instances of the server now running. Each one writes its row every few seconds (its
-- heartbeat), with the key epoch it holds, whether its change listener is in effect (only
-- then do requests reach it), and a fingerprint of its ENCRYPTION_KEY (16 bytes derived
-- from the key, never the key: `secrets reseal` refuses to move secrets to a key the
-- running instances do not hold); it deletes its row when it shuts down. Not audited:
-- presence, not state.
CREATE TABLE instances (
    id                         uuid        PRIMARY KEY,
    host                       text        NOT NULL CHECK (length(host) BETWEEN 1 AND 255),
    version                    text        NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
    started_at                 timestamptz NOT NULL,
    last_seen                  timestamptz NOT NULL DEFAULT now(),
    key_epoch                  bigint      NOT NULL,
    keys_loaded_at             timestamptz,
    listening                  boolean     NOT NULL,
    encryption_key_fingerprint bytea       NOT NULL CHECK (length(encryption_key_fingerprint) = 16)
);
CREATE INDEX instances_last_seen ON instances (last_seen);
GRANT SELECT, INSERT, UPDATE, DELETE ON instances TO staff_console_app;

CREATE TYPE instance_request_kind AS ENUM ('refresh', 'verify');

-- An operator's request to every live instance: reload the key set (`refresh`), or check
-- that the keys no longer trusted are refused and the active one accepted (`verify`).
-- `instances` are the instances live when it was made: the ones expected to answer.
CREATE TABLE instance_requests (
    id           uuid                  PRIMARY KEY,
    kind         instance_request_kind NOT NULL,
    tenant_id    uuid                  NOT NULL REFERENCES tenants (id),
    requested_by text                  NOT NULL,
    requested_at timestamptz           NOT NULL DEFAULT now(),
    epoch        bigint                NOT NULL,
    instances    uuid[]                NOT NULL
);
CREATE INDEX instance_requests_recent ON instance_requests (tenant_id, kind, requested_at DESC);

-- Each instance's answer: the key epoch it holds once it acted, and for a verification
-- each probe's expected and actual outcome. Audited: runbook 001's evidence.
CREATE TABLE instance_acks (
    request_id  uuid        NOT NULL REFERENCES instance_requests (id),
    instance_id uuid        NOT NULL,
    host        text        NOT NULL,
    epoch       bigint      NOT NULL,
    acked_at    timestamptz NOT NULL DEFAULT now(),
    passed      boolean,
    results     jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (request_id, instance_id),
    CHECK (jsonb_typeof(results) = 'array')
);
GRANT SELECT, INSERT ON instance_requests, instance_acks TO staff_console_app;

-- Every instance hears of a request when it commits.
CREATE FUNCTION instance_request_made() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_gateway', NEW.kind::text || ':' || NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_request_made AFTER INSERT ON instance_requests
    FOR EACH ROW EXECUTE FUNCTION instance_request_made();

CREATE TRIGGER instance_requests_audit_insert AFTER INSERT ON instance_requests
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_requests_audit_update AFTER UPDATE ON instance_requests
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_requests_audit_delete AFTER DELETE ON instance_requests
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_requests_audit_truncate AFTER TRUNCATE ON instance_requests
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();
CREATE TRIGGER instance_acks_audit_insert AFTER INSERT ON instance_acks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_acks_audit_update AFTER UPDATE ON instance_acks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_acks_audit_delete AFTER DELETE ON instance_acks
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER instance_acks_audit_truncate AFTER TRUNCATE ON instance_acks
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();

-- Which ENCRYPTION_KEY a recovery code was hashed under (16 bytes derived from the key; the
-- key itself is never stored): codes are hashes, so they cannot be re-sealed when the key
-- rotates, and `secrets reseal` reports the staff whose codes are still on the previous
-- key. NULL: made before this was recorded.
ALTER TABLE staff_recovery_codes
    ADD COLUMN key_fingerprint bytea CHECK (length(key_fingerprint) = 16);
