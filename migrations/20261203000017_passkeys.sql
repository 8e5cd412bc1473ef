-- Staff passkeys (issue 15): WebAuthn credentials as a second factor, several per person,
-- and the server-side state of a WebAuthn ceremony between its two requests.

-- A registered passkey. `credential` is webauthn-rs's record of it (the public key, its
-- algorithm, the signature counter and the backup flags), as JSON; the private key never
-- leaves the authenticator. A credential id belongs to one person only (the unique index):
-- an authenticator cannot be registered to two accounts.
CREATE TABLE staff_passkeys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    staff_id      uuid        NOT NULL REFERENCES staff (id),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    credential_id bytea       NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 16 AND 1023),
    credential    jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX staff_passkeys_staff ON staff_passkeys (staff_id);

-- A ceremony waiting for the browser's answer: what webauthn-rs needs to check it (the
-- challenge, the credentials allowed, the user verification asked for). Kept here, never
-- sent to the browser, and deleted as it is answered (`DELETE … RETURNING`), so a
-- challenge is checked at most once, on whichever instance the answer reaches; an
-- unanswered one lapses at `expires_at`. `session_id` ties a registration or a step-up to
-- the session that started it; a sign-in's belongs to the browser whose password was right
-- (its pending sign-in names the person), so it has none.
CREATE TABLE staff_webauthn_ceremonies (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    staff_id    uuid        NOT NULL REFERENCES staff (id),
    purpose     text        NOT NULL CHECK (purpose IN ('register', 'sign_in', 'step_up')),
    session_id  uuid        REFERENCES staff_sessions (id),
    -- The name the person gave the passkey being registered.
    name        text        CHECK (length(name) BETWEEN 1 AND 100),
    state       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK ((purpose = 'register') = (name IS NOT NULL)),
    CHECK ((purpose = 'sign_in') = (session_id IS NULL))
);
CREATE INDEX staff_webauthn_ceremonies_staff ON staff_webauthn_ceremonies (staff_id, purpose);
CREATE INDEX staff_webauthn_ceremonies_expires ON staff_webauthn_ceremonies (expires_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON staff_passkeys TO staff_console_app;
GRANT SELECT, INSERT, DELETE ON staff_webauthn_ceremonies TO staff_console_app;

-- Passkeys are audited like the other factors. Ceremonies are not state: starting one
-- changes nothing, and its answer (a sign-in, a step-up, a passkey added) is audited.
CREATE TRIGGER staff_passkeys_audit_insert AFTER INSERT ON staff_passkeys
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER staff_passkeys_audit_update AFTER UPDATE ON staff_passkeys
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER staff_passkeys_audit_delete AFTER DELETE ON staff_passkeys
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige();
CREATE TRIGGER staff_passkeys_audit_truncate AFTER TRUNCATE ON staff_passkeys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate();

-- Whether a person has a second factor to sign in with: an authenticator app (confirmed)
-- or a passkey. Recovery codes are the fallback of one, never a factor alone. The queries
-- that decide whether a session must enrol, or ends because its person now has a factor,
-- ask this one question.
CREATE FUNCTION staff_has_factor(staff uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM public.staff_totp t
                   WHERE t.staff_id = staff AND t.confirmed_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM public.staff_passkeys p WHERE p.staff_id = staff)
$$;

-- A person's passkeys have different names, so the list (and the audit log) tells them
-- apart.
CREATE UNIQUE INDEX staff_passkeys_name ON staff_passkeys (staff_id, name);
