-- Credits: per-channel prepaid wallets on an append-only ledger, the
-- platform's master wallet, its price list, packages and custom plans.
--
-- Invariants the constraints back up (the store keeps them, the tests check them):
--   wallet.balance = sum of its entries' amounts = sum of its grants' remaining + wallet.held
--   no balance, remaining, hold or stock is ever below zero.

-- A tenant's wallet for one channel, created on first use.
CREATE TABLE credit_wallets (
    tenant_id             uuid        NOT NULL REFERENCES tenants (id),
    id                    uuid        NOT NULL,
    channel               text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    balance               bigint      NOT NULL DEFAULT 0 CHECK (balance >= 0),
    held                  bigint      NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance),
    low_balance_threshold bigint      CHECK (low_balance_threshold > 0),
    -- The alert fired and has not been re-armed by a rise above the threshold.
    low_balance_alerted   boolean     NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel)
);

-- Credits as they arrived. `remaining` is what is neither spent, held nor expired.
CREATE TABLE credit_grants (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    wallet_id  uuid        NOT NULL,
    source     text        NOT NULL CHECK (source IN ('purchase', 'package', 'promotional', 'refund', 'adjustment')),
    amount     bigint      NOT NULL CHECK (amount > 0),
    remaining  bigint      NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    priority   smallint    NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    expires_at timestamptz,
    paid       boolean     NOT NULL,
    reference  text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, wallet_id) REFERENCES credit_wallets (tenant_id, id)
);

CREATE INDEX credit_grants_open_idx ON credit_grants (tenant_id, wallet_id) WHERE remaining > 0;
-- The expiry sweep finds due grants across tenants.
CREATE INDEX credit_grants_due_idx ON credit_grants (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- The ledger: append-only (no UPDATE or DELETE is granted), one entry per grant touched.
CREATE TABLE credit_entries (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id),
    id             uuid        NOT NULL,
    wallet_id      uuid        NOT NULL,
    grant_id       uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('grant', 'debit', 'capture', 'expiry', 'adjustment')),
    amount         bigint      NOT NULL,
    balance_after  bigint      NOT NULL CHECK (balance_after >= 0),
    reference      text        NOT NULL,
    reservation_id uuid,
    actor          text        NOT NULL,
    note           text,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, wallet_id) REFERENCES credit_wallets (tenant_id, id),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES credit_grants (tenant_id, id),
    -- Credits come in only as grants, and go out by every other kind.
    CHECK ((kind = 'grant' AND amount > 0) OR (kind <> 'grant' AND amount < 0))
);

CREATE INDEX credit_entries_time_idx ON credit_entries (tenant_id, created_at DESC, id DESC);
CREATE INDEX credit_entries_wallet_idx ON credit_entries (tenant_id, wallet_id, created_at DESC, id DESC);

-- Credits held for a send about to happen; `draws` says which grants hold them.
CREATE TABLE credit_reservations (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    wallet_id  uuid        NOT NULL,
    amount     bigint      NOT NULL CHECK (amount > 0),
    captured   bigint      NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount),
    status     text        NOT NULL CHECK (status IN ('held', 'captured', 'released', 'expired')),
    draws      jsonb       NOT NULL,
    reference  text        NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    settled_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, wallet_id) REFERENCES credit_wallets (tenant_id, id),
    CHECK ((status = 'held') = (settled_at IS NULL))
);

CREATE INDEX credit_reservations_due_idx ON credit_reservations (expires_at) WHERE status = 'held';

-- Reference keys: an operation repeated with its key answers its first result.
CREATE TABLE credit_operations (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    reference  text        NOT NULL CHECK (char_length(reference) BETWEEN 1 AND 255),
    kind       text        NOT NULL,
    request    jsonb       NOT NULL,
    result     jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, reference)
);

-- What tenants bought, at which price: billing invoices these.
CREATE TABLE credit_purchases (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    id           uuid        NOT NULL,
    reference    text        NOT NULL,
    package_id   uuid,
    channel      text        CHECK (channel IN ('sms', 'whatsapp', 'email')),
    quantity     bigint      NOT NULL CHECK (quantity > 0),
    unit_price   numeric(20, 6),
    total_minor  bigint      NOT NULL CHECK (total_minor >= 0),
    currency     text        NOT NULL,
    plan_id      uuid,
    actor        text        NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((package_id IS NULL) <> (channel IS NULL))
);

-- The platform's stock per channel: rows of the platform tenant only.
CREATE TABLE credit_master_wallets (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id)
               CHECK (tenant_id = '00000000-0000-7000-8000-000000000001'),
    channel    text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    balance    bigint      NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

CREATE TABLE credit_master_entries (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id)
                    CHECK (tenant_id = '00000000-0000-7000-8000-000000000001'),
    id              uuid        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    kind            text        NOT NULL CHECK (kind IN ('top_up', 'sale', 'return')),
    amount          bigint      NOT NULL CHECK ((kind = 'sale') = (amount < 0) AND amount <> 0),
    balance_after   bigint      NOT NULL CHECK (balance_after >= 0),
    buyer_tenant_id uuid,
    reference       text        NOT NULL,
    actor           text        NOT NULL,
    note            text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX credit_master_entries_time_idx ON credit_master_entries (tenant_id, channel, created_at DESC);

-- The price list and the packages: the platform tenant's rows, readable by
-- every tenant (they are what tenants buy from), written only in its scope.
CREATE TABLE credit_prices (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id)
               CHECK (tenant_id = '00000000-0000-7000-8000-000000000001'),
    channel    text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    currency   text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    tiers      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, channel, currency)
);

CREATE TABLE credit_packages (
    tenant_id     uuid        NOT NULL REFERENCES tenants (id)
                  CHECK (tenant_id = '00000000-0000-7000-8000-000000000001'),
    id            uuid        NOT NULL,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description   text        NOT NULL DEFAULT '',
    credits       jsonb       NOT NULL,
    price_minor   bigint      NOT NULL CHECK (price_minor >= 0),
    currency      text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    validity_days integer     CHECK (validity_days BETWEEN 1 AND 3650),
    active        boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX credit_packages_name_key ON credit_packages (tenant_id, lower(name));

-- A tenant's negotiated prices (a row of that tenant, written by the platform's staff).
CREATE TABLE credit_custom_plans (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    channel     text        NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'email')),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    tiers       jsonb       NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_until timestamptz CHECK (valid_until > valid_from),
    active      boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['credit_wallets', 'credit_grants', 'credit_entries', 'credit_reservations',
                             'credit_operations', 'credit_purchases', 'credit_master_wallets',
                             'credit_master_entries', 'credit_custom_plans', 'credit_prices', 'credit_packages']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END
$$;

-- The catalogue is readable by every tenant.
CREATE POLICY catalogue_read ON credit_prices FOR SELECT USING (true);
CREATE POLICY catalogue_read ON credit_packages FOR SELECT USING (true);

GRANT SELECT, INSERT, UPDATE ON credit_wallets, credit_grants, credit_reservations, credit_master_wallets,
    credit_custom_plans, credit_packages TO portico_app, portico_platform;
GRANT SELECT, INSERT ON credit_entries, credit_operations, credit_purchases, credit_master_entries
    TO portico_app, portico_platform;
GRANT SELECT, INSERT, UPDATE, DELETE ON credit_prices TO portico_app, portico_platform;

-- A tenant's purchase moves credits out of the platform's stock in the
-- buyer's own transaction. The buyer's scope cannot see the platform's rows,
-- so this one function (owned by portico_owner) does exactly that move:
-- `delta` < 0 sells to the scoped tenant, > 0 takes credits back. It answers
-- the stock after the move, or NULL (and changes nothing) when the stock is short
-- (or was never topped up).
CREATE FUNCTION credit_master_transfer(p_id uuid, p_channel text, p_delta bigint, p_reference text, p_actor text,
                                       p_note text, p_now timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
DECLARE
    platform constant uuid := '00000000-0000-7000-8000-000000000001';
    buyer uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    after bigint;
BEGIN
    IF buyer IS NULL OR p_delta = 0 THEN
        RAISE EXCEPTION 'credit_master_transfer needs a tenant scope and a non-zero delta';
    END IF;
    UPDATE public.credit_master_wallets
       SET balance = balance + p_delta, updated_at = p_now
     WHERE tenant_id = platform AND channel = p_channel AND balance + p_delta >= 0
    RETURNING balance INTO after;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.credit_master_entries
        (tenant_id, id, channel, kind, amount, balance_after, buyer_tenant_id, reference, actor, note, created_at)
    VALUES (platform, p_id, p_channel, CASE WHEN p_delta < 0 THEN 'sale' ELSE 'return' END,
            p_delta, after, buyer, p_reference, p_actor, p_note, p_now);
    RETURN after;
END
$$;

REVOKE ALL ON FUNCTION credit_master_transfer(uuid, text, bigint, text, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credit_master_transfer(uuid, text, bigint, text, text, text, timestamptz) TO portico_app;
