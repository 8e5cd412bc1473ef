-- End users' mail (issue 17, runbooks 000 §3 and 004): recovery and magic links, the
-- outgoing queue that holds mail while `emailSendingEnabled` is off, and each tenant's
-- allowlist of email domains.

-- The domains magic links and recovery mail may go to (empty: any). Runbook 000 §3:
-- "enforce domain allowlists" after an SMTP breach.
ALTER TABLE tenants ADD COLUMN email_domains text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(email_domains) <= 100);

CREATE TYPE end_user_link_purpose AS ENUM ('magic_link', 'recovery');
CREATE TYPE mail_state AS ENUM ('pending', 'sent', 'dropped', 'failed');

-- Outgoing mail. A row holds what to send, never a secret: the one-time link a mail
-- carries is made when it is sent (so mail held for hours still gets a link that lasts its
-- full 15 minutes). While `emailSendingEnabled` is off for the tenant, pending mail stays
-- pending (held) until it is on again or an operator drops it with a reason.
CREATE TABLE outbound_mail (
    id              uuid                  PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid                  NOT NULL REFERENCES tenants (id),
    user_id         uuid                  NOT NULL REFERENCES end_users (id),
    kind            end_user_link_purpose NOT NULL,
    to_address      text                  NOT NULL CHECK (length(to_address) BETWEEN 3 AND 254),
    state           mail_state            NOT NULL DEFAULT 'pending',
    -- Who or what asked for it (`end_user`, `staff:<id>`, ...), for the queue's list.
    requested_by    text                  NOT NULL CHECK (length(requested_by) <= 200),
    created_at      timestamptz           NOT NULL DEFAULT now(),
    attempts        integer               NOT NULL DEFAULT 0,
    next_attempt_at timestamptz           NOT NULL DEFAULT now(),
    last_error      text                  CHECK (length(last_error) <= 500),
    -- `smtp` or `outbox` (development: a file in DATA_DIR/outbox), and its message id.
    transport       text                  CHECK (transport IN ('smtp', 'outbox')),
    message_id      text                  CHECK (length(message_id) <= 200),
    sent_at         timestamptz,
    dropped_at      timestamptz,
    dropped_by      text                  CHECK (length(dropped_by) <= 200),
    dropped_reason  text                  CHECK (length(dropped_reason) <= 500),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CHECK ((state = 'dropped') = (dropped_at IS NOT NULL AND dropped_reason IS NOT NULL))
);
CREATE INDEX outbound_mail_due ON outbound_mail (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbound_mail_tenant ON outbound_mail (tenant_id, created_at DESC);
CREATE INDEX outbound_mail_user ON outbound_mail (user_id, created_at DESC);

-- One-time links (`mf_ml_v1.` magic links, `mf_rc_v1.` recovery): only
-- HMAC-SHA256(pepper, secret) is kept; used once, within 15 minutes.
CREATE TABLE end_user_links (
    id             text                  PRIMARY KEY CHECK (length(id) BETWEEN 10 AND 24),
    tenant_id      uuid                  NOT NULL REFERENCES tenants (id),
    user_id        uuid                  NOT NULL REFERENCES end_users (id),
    purpose        end_user_link_purpose NOT NULL,
    mail_id        uuid                  NOT NULL REFERENCES outbound_mail (id),
    secret_hash    bytea                 NOT NULL CHECK (length(secret_hash) = 32),
    pepper_version integer               NOT NULL REFERENCES token_peppers (version),
    created_at     timestamptz           NOT NULL DEFAULT now(),
    expires_at     timestamptz           NOT NULL,
    -- Used, or cancelled (a recovery, a lock): never usable again.
    used_at        timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX end_user_links_user ON end_user_links (user_id) WHERE used_at IS NULL;

GRANT SELECT, INSERT, UPDATE ON outbound_mail, end_user_links TO staff_console_app;

-- Both audited: every mail queued, sent, dropped or failed, and every link made or used,
-- is an event.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['outbound_mail', 'end_user_links'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_insert', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_update', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige()', t || '_audit_delete', t);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION audit_oblige_truncate()', t || '_audit_truncate', t);
    END LOOP;
END
$$;

-- The senders wake when mail is queued (they also look every few seconds).
CREATE FUNCTION outbound_mail_queued() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sc_mail', 'queued');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbound_mail_queued AFTER INSERT ON outbound_mail
    FOR EACH STATEMENT EXECUTE FUNCTION outbound_mail_queued();
