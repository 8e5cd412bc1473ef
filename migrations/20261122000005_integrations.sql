-- Integrations: API clients (as token owners), token ownership, cache invalidation for the
-- gateway, and the indexes the Integrations panel and the token history read through.

-- API clients: machines that call the agent API. Issue 5's Agent Ops panel manages them;
-- here they exist so a token can belong to one and be revoked with it.
CREATE TYPE client_status AS ENUM ('active', 'suspended', 'revoked');

CREATE TABLE api_clients (
    id          uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid          NOT NULL REFERENCES tenants (id),
    name        text          NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status      client_status NOT NULL DEFAULT 'active',
    allowlisted boolean       NOT NULL DEFAULT false,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    created_by  text          NOT NULL DEFAULT 'system',
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    -- Lets a token's client be tied to the token's tenant by a foreign key.
    UNIQUE (tenant_id, id)
);

-- A token belongs to exactly one staff member or one API client, each a real foreign key.
-- (No token could be minted before this migration, so the table is empty here.)
ALTER TABLE personal_access_tokens
    DROP COLUMN owner_kind,
    DROP COLUMN owner_id,
    ADD COLUMN owner_staff_id  uuid REFERENCES staff (id),
    ADD COLUMN owner_client_id uuid,
    -- A client-owned token belongs to its client's tenant, enforced by the database.
    ADD CONSTRAINT pat_client_in_tenant FOREIGN KEY (tenant_id, owner_client_id)
        REFERENCES api_clients (tenant_id, id),
    ADD CONSTRAINT pat_exactly_one_owner
        CHECK ((owner_staff_id IS NULL) <> (owner_client_id IS NULL)),
    -- Bumped whenever anything the gateway caches changes (status, hash, pepper, expiry,
    -- scopes): instances compare it to find stale cache entries when a notification was missed.
    ADD COLUMN revision bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT pat_revoke_reason_length CHECK (length(revoke_reason) <= 500);

CREATE INDEX pats_owner_staff ON personal_access_tokens (owner_staff_id, created_at DESC)
    WHERE owner_staff_id IS NOT NULL;
CREATE INDEX pats_owner_client ON personal_access_tokens (owner_client_id, created_at DESC)
    WHERE owner_client_id IS NOT NULL;
CREATE INDEX pats_tenant_active ON personal_access_tokens (tenant_id) WHERE status = 'active';
CREATE INDEX pats_tenant_last_used ON personal_access_tokens (tenant_id, last_used_at DESC);

-- Every instance of the gateway caches verified tokens. A change to anything it caches bumps
-- the row's revision and notifies channel `sc_gateway` with `pat:<id>`; the notification is
-- delivered when the changing transaction commits. `last_used_*` updates notify nobody.
CREATE FUNCTION pat_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    PERFORM pg_notify('sc_gateway', 'pat:' || NEW.id);
    RETURN NEW;
END
$$;

CREATE TRIGGER pat_changed BEFORE UPDATE ON personal_access_tokens
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
          OR OLD.pepper_version IS DISTINCT FROM NEW.pepper_version
          OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.scopes IS DISTINCT FROM NEW.scopes)
    EXECUTE FUNCTION pat_changed();

-- A token owner disabled or re-enabled (staff) or suspended, revoked or reactivated (API
-- client): every instance drops the owner's cached tokens, so the next call sees the change.
CREATE FUNCTION owner_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_gateway', 'owner:' || NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER staff_owner_changed AFTER UPDATE OF status ON staff
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION owner_changed();
CREATE TRIGGER client_owner_changed AFTER UPDATE OF status ON api_clients
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION owner_changed();

-- A pepper added, promoted or retired: every instance reloads its pepper ring.
CREATE FUNCTION pepper_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_gateway', 'pepper');
    RETURN NULL;
END
$$;

CREATE TRIGGER pepper_changed AFTER INSERT OR UPDATE ON token_peppers
    FOR EACH STATEMENT EXECUTE FUNCTION pepper_changed();

ALTER TABLE token_peppers ADD COLUMN retired_at timestamptz;

-- A token's history is the audit events that target it.
CREATE INDEX audit_events_target ON audit_events (target, seq DESC) WHERE target IS NOT NULL;

GRANT SELECT, INSERT, UPDATE ON api_clients TO staff_console_app;

-- The token list as the Integrations panel shows it: owner and minter readable, status with
-- expiry applied. List and detail read through it, so they cannot disagree.
CREATE VIEW pat_listing AS
SELECT p.id, p.tenant_id, p.name, p.owner_staff_id, p.owner_client_id,
       coalesce(s.email, c.name) AS owner_label,
       p.scopes,
       CASE WHEN p.status = 'revoked' THEN 'revoked'
            WHEN p.expires_at <= now() THEN 'expired'
            ELSE 'active' END AS status,
       p.expires_at, p.created_at, minter.email AS created_by,
       p.last_used_at, host(p.last_used_ip) AS last_used_ip, p.pepper_version,
       p.revoked_at, p.revoked_by, p.revoke_reason
FROM personal_access_tokens p
LEFT JOIN staff s ON s.id = p.owner_staff_id
LEFT JOIN api_clients c ON c.id = p.owner_client_id
LEFT JOIN staff minter ON minter.id = p.created_by;

GRANT SELECT ON pat_listing TO staff_console_app;
