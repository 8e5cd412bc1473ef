-- Delegated agent tokens (issue 16): every instance's key set, and single-use token ids.

-- The key epoch: bumped by every change to a signing key, or to what a tenant's tokens are
-- checked against (its slug, its audiences). Every instance reloads its key set when it
-- moves (notified at once; compared by a poll in case a notification was lost), and
-- reports the epoch it holds, so operators see which instance still holds an old set.
--
-- A row, not a sequence: a sequence moves before the change commits (and stays moved if it
-- rolls back), so a poll could read the new epoch with the old rows and never look again.
-- The row moves with the change, and the key set reads it in the same snapshot as the keys.
-- Only the trigger below moves it (as the schema owner): the serving role reads it.
CREATE TABLE signing_key_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL
);
INSERT INTO signing_key_epoch VALUES (true, 0);
GRANT SELECT ON signing_key_epoch TO staff_console_app;

CREATE FUNCTION signing_keys_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.signing_key_epoch SET epoch = epoch + 1;
    PERFORM pg_notify('sc_gateway', 'keys');
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION signing_keys_changed() FROM PUBLIC;

DROP TRIGGER signing_keys_changed ON signing_keys;
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION signing_keys_changed();
CREATE TRIGGER tenants_keys_changed AFTER INSERT OR UPDATE OF slug, allowed_audiences ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION signing_keys_changed();

-- The ids (`jti`) of delegated tokens used on a route that changes state: a second use is
-- a replay, refused on whichever instance it reaches (the primary key, `ON CONFLICT`).
-- Rows are purged once the token has expired. Not audited: a guard, not state; each use
-- and each refused replay is in the gateway's audit events.
CREATE TABLE delegated_token_uses (
    jti        uuid        PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delegated_token_uses_expires ON delegated_token_uses (expires_at);
GRANT SELECT, INSERT, DELETE ON delegated_token_uses TO staff_console_app;
