-- Agent Ops: client keys, kill switches, rate-limit overrides, IP blocks and the service
-- tokens other services read switches with. Every instance of the gateway keeps switches,
-- limits and blocks in memory; a change here notifies channel `sc_gateway` when it commits.

-- An API client's keys. Rotation adds a version; the old one is retired at once or after a
-- grace period (state `retiring` until `retire_after`). Only a SHA-256 of the (32 random
-- bytes) secret is stored.
CREATE TABLE client_keys (
    client_id    uuid        NOT NULL REFERENCES api_clients (id),
    version      integer     NOT NULL CHECK (version > 0),
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    state        text        NOT NULL CHECK (state IN ('active', 'retiring', 'retired', 'revoked')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL,
    retire_after timestamptz CHECK (state <> 'retiring' OR retire_after IS NOT NULL),
    retired_at   timestamptz,
    PRIMARY KEY (client_id, version)
);
CREATE UNIQUE INDEX client_keys_one_active ON client_keys (client_id) WHERE state = 'active';
CREATE INDEX client_keys_retiring ON client_keys (retire_after) WHERE state = 'retiring';

-- Status changes of a client are audit events; a suspension's reason is also kept on the row
-- for the list.
ALTER TABLE api_clients
    ADD COLUMN status_reason text CHECK (length(status_reason) <= 500),
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN status_changed_by text;
CREATE INDEX api_clients_tenant_status ON api_clients (tenant_id, status, name);

-- The allowlist posture reads the flag from the gateway's token cache: changing it drops the
-- client's cached tokens everywhere, as a status change does.
CREATE TRIGGER client_allowlist_changed AFTER UPDATE OF allowlisted ON api_clients
    FOR EACH ROW WHEN (OLD.allowlisted IS DISTINCT FROM NEW.allowlisted)
    EXECUTE FUNCTION owner_changed();

-- Kill switches: one global row per key (always present), and optional per-tenant overrides.
-- A flip with an expiry reverts by itself: a global row to `revert_to`; a tenant row to
-- `revert_to`, or, when that is NULL, the override is removed.
CREATE TABLE kill_switches (
    key        text        NOT NULL CHECK (key IN ('agentApiEnabled', 'agentPaymentsEnabled',
                                                   'strictAllowlist', 'TURNSTILE_DISABLED',
                                                   'magicLinkEnabled', 'emailSendingEnabled')),
    tenant_id  uuid        REFERENCES tenants (id),
    value      boolean     NOT NULL,
    reason     text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    set_by     text        NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revert_to  boolean,
    CHECK (tenant_id IS NOT NULL OR expires_at IS NULL OR revert_to IS NOT NULL),
    UNIQUE NULLS NOT DISTINCT (key, tenant_id)
);
CREATE INDEX kill_switches_expiring ON kill_switches (expires_at) WHERE expires_at IS NOT NULL;

INSERT INTO kill_switches (key, value, reason, set_by) VALUES
    ('agentApiEnabled', true, 'default', 'system'),
    ('agentPaymentsEnabled', true, 'default', 'system'),
    ('strictAllowlist', false, 'default', 'system'),
    ('TURNSTILE_DISABLED', false, 'default', 'system'),
    ('magicLinkEnabled', true, 'default', 'system'),
    ('emailSendingEnabled', true, 'default', 'system');

-- Rate-limit overrides: for a tenant (all its callers together), a client (a token owner) or
-- an address or network (each address in it). Limits are requests per minute with a burst.
CREATE TABLE rate_limit_overrides (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    scope            text        NOT NULL CHECK (scope IN ('tenant', 'client', 'ip')),
    tenant_id        uuid        REFERENCES tenants (id),
    client_id        uuid        REFERENCES api_clients (id),
    network          cidr,
    limit_per_minute integer     NOT NULL CHECK (limit_per_minute BETWEEN 1 AND 10000000),
    burst            integer     NOT NULL CHECK (burst BETWEEN 1 AND 1000000),
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    expires_at       timestamptz,
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL AND client_id IS NULL AND network IS NULL)
        OR scope <> 'tenant'),
    CHECK (scope <> 'client' OR (client_id IS NOT NULL AND network IS NULL)),
    CHECK (scope <> 'ip' OR (network IS NOT NULL AND tenant_id IS NULL AND client_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (scope, tenant_id, client_id, network)
);

-- Addresses and networks the gateway refuses with 403 IP_BLOCKED.
CREATE TABLE ip_blocks (
    network    cidr        PRIMARY KEY,
    reason     text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    expires_at timestamptz,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Tokens of other services reading `/api/v1/switches`. Minted on the command line; only a
-- SHA-256 of the secret is kept.
CREATE TABLE service_tokens (
    id          text        PRIMARY KEY CHECK (length(id) = 16),
    name        text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    revoked_at  timestamptz
);

CREATE FUNCTION notify_gateway() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_gateway', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER kill_switches_changed AFTER INSERT OR UPDATE OR DELETE ON kill_switches
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway('switches');
CREATE TRIGGER rate_limits_changed AFTER INSERT OR UPDATE OR DELETE ON rate_limit_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway('limits');
CREATE TRIGGER ip_blocks_changed AFTER INSERT OR UPDATE OR DELETE ON ip_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_gateway('limits');

GRANT SELECT, INSERT, UPDATE ON client_keys, service_tokens TO staff_console_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON kill_switches, rate_limit_overrides, ip_blocks
    TO staff_console_app;
