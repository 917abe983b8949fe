-- The CRM: companies, contacts, leads, pipelines and their stages, deals
-- and their stage history, activities, support tickets and their comments,
-- and the merges of duplicates. Every table is a tenant's, under RLS.
--
-- Search: row-level security keeps non-leakproof operators (`@@`, `@>`,
-- `LIKE`) from being index conditions, so a GIN index over a tsvector
-- would be read row by row. Instead each searchable record's words, as
-- PostgreSQL's full-text parser splits and folds them, are kept in
-- `crm_search_terms`, one row per word, and a search is a prefix range
-- over that btree (text comparisons in the "C" collation are leakproof).

CREATE TABLE crm_companies (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    -- The name without case, spacing or legal form: duplicates match on it.
    name_key   text        CHECK (char_length(name_key) BETWEEN 1 AND 200),
    domain     text        CHECK (char_length(domain) BETWEEN 1 AND 253),
    industry   text        CHECK (char_length(industry) BETWEEN 1 AND 100),
    size       text        CHECK (size IN ('1-10', '11-50', '51-200', '201-500', '501-1000', '1001-5000', '5001+')),
    address    jsonb       CHECK (jsonb_typeof(address) = 'object'),
    owner_id   uuid,
    tags       text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX crm_companies_name_idx ON crm_companies (tenant_id, lower(name), id);
CREATE INDEX crm_companies_domain_idx ON crm_companies (tenant_id, domain);
CREATE INDEX crm_companies_name_key_idx ON crm_companies (tenant_id, name_key);

CREATE TABLE crm_contacts (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id),
    id           uuid        NOT NULL,
    first_name   text        CHECK (char_length(first_name) BETWEEN 1 AND 100),
    last_name    text        CHECK (char_length(last_name) BETWEEN 1 AND 100),
    display_name text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
    contact_type text        NOT NULL CHECK (contact_type IN ('customer', 'prospect', 'partner', 'vendor')),
    status       text        NOT NULL CHECK (status IN ('active', 'inactive')),
    -- As entered, with labels and the primary flag ...
    emails       jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(emails) = 'array'),
    phones       jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(phones) = 'array'),
    -- ... and normalised (lower-case emails, E.164 phones): duplicates match on these.
    email_keys   text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(email_keys) <= 10),
    phone_keys   text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(phone_keys) <= 10),
    company_id   uuid,
    owner_id     uuid,
    tags         text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES crm_companies (tenant_id, id) ON DELETE SET NULL (company_id)
);
-- The list's sort orders, each ending on the id so pages are stable.
CREATE INDEX crm_contacts_name_idx ON crm_contacts (tenant_id, lower(display_name), id);
CREATE INDEX crm_contacts_created_idx ON crm_contacts (tenant_id, created_at, id);
CREATE INDEX crm_contacts_updated_idx ON crm_contacts (tenant_id, updated_at, id);
-- With the id: a search through companies' words finds their contacts from the index alone.
CREATE INDEX crm_contacts_company_idx ON crm_contacts (tenant_id, company_id, id);
CREATE INDEX crm_contacts_owner_idx ON crm_contacts (tenant_id, owner_id);
-- Filters by status and type count from the index alone.
CREATE INDEX crm_contacts_status_idx ON crm_contacts (tenant_id, status, contact_type);

-- One row per normalised email or phone of a contact: duplicate detection
-- and the import's matching look values up here.
CREATE TABLE crm_contact_keys (
    tenant_id  uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('email', 'phone')),
    key        text COLLATE "C" NOT NULL,
    contact_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, kind, key, contact_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crm_contact_keys_contact_idx ON crm_contact_keys (tenant_id, contact_id);

CREATE TABLE crm_pipelines (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX crm_pipelines_name_key ON crm_pipelines (tenant_id, lower(name));

CREATE TABLE crm_stages (
    tenant_id   uuid     NOT NULL,
    pipeline_id uuid     NOT NULL,
    id          uuid     NOT NULL,
    name        text     NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    position    integer  NOT NULL CHECK (position >= 0),
    probability smallint NOT NULL CHECK (probability BETWEEN 0 AND 100),
    kind        text     NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, pipeline_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES crm_pipelines (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE crm_leads (
    tenant_id        uuid        NOT NULL REFERENCES tenants (id),
    id               uuid        NOT NULL,
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email            text        CHECK (char_length(email) BETWEEN 1 AND 254),
    phone            text        CHECK (char_length(phone) BETWEEN 1 AND 40),
    company_name     text        CHECK (char_length(company_name) BETWEEN 1 AND 200),
    source           text        NOT NULL CHECK (source IN ('website', 'referral', 'campaign', 'import', 'manual', 'other')),
    status           text        NOT NULL CHECK (status IN ('new', 'contacted', 'qualified', 'unqualified', 'converted')),
    estimated_amount bigint,
    estimated_currency text      CHECK (estimated_currency ~ '^[A-Z]{3}$'),
    owner_id         uuid,
    tags             text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
    -- What a conversion made or linked.
    contact_id       uuid,
    company_id       uuid,
    deal_id          uuid,
    converted_at     timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id) ON DELETE SET NULL (contact_id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES crm_companies (tenant_id, id) ON DELETE SET NULL (company_id),
    CHECK ((estimated_amount IS NULL) = (estimated_currency IS NULL)),
    CHECK ((status = 'converted') = (converted_at IS NOT NULL))
);
CREATE INDEX crm_leads_created_idx ON crm_leads (tenant_id, created_at, id);
CREATE INDEX crm_leads_status_idx ON crm_leads (tenant_id, status);
CREATE INDEX crm_leads_contact_idx ON crm_leads (tenant_id, contact_id);
CREATE INDEX crm_leads_company_idx ON crm_leads (tenant_id, company_id);

CREATE TABLE crm_deals (
    tenant_id            uuid        NOT NULL REFERENCES tenants (id),
    id                   uuid        NOT NULL,
    title                text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    amount               bigint      NOT NULL,
    currency             text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    pipeline_id          uuid        NOT NULL,
    stage_id             uuid        NOT NULL,
    probability_override smallint    CHECK (probability_override BETWEEN 0 AND 100),
    expected_close_date  date,
    owner_id             uuid        NOT NULL,
    contact_id           uuid,
    company_id           uuid,
    status               text        NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    closed_at            timestamptz,
    close_reason         text        CHECK (char_length(close_reason) BETWEEN 1 AND 500),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    -- A deal's stage is one of its pipeline's; a stage with deals cannot go.
    FOREIGN KEY (tenant_id, pipeline_id, stage_id) REFERENCES crm_stages (tenant_id, pipeline_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id) ON DELETE SET NULL (contact_id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES crm_companies (tenant_id, id) ON DELETE SET NULL (company_id),
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK (status <> 'lost' OR close_reason IS NOT NULL)
);
ALTER TABLE crm_leads ADD FOREIGN KEY (tenant_id, deal_id) REFERENCES crm_deals (tenant_id, id) ON DELETE SET NULL (deal_id);
CREATE INDEX crm_deals_stage_idx ON crm_deals (tenant_id, pipeline_id, stage_id);
CREATE INDEX crm_deals_created_idx ON crm_deals (tenant_id, created_at, id);
CREATE INDEX crm_deals_contact_idx ON crm_deals (tenant_id, contact_id);
CREATE INDEX crm_deals_company_idx ON crm_deals (tenant_id, company_id);

-- Every move of a deal between stages (or pipelines): from, to, when, who.
CREATE TABLE crm_deal_stage_changes (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    deal_id          uuid        NOT NULL,
    from_pipeline_id uuid        NOT NULL,
    from_stage_id    uuid        NOT NULL,
    to_pipeline_id   uuid        NOT NULL,
    to_stage_id      uuid        NOT NULL,
    at               timestamptz NOT NULL,
    by_user          uuid        NOT NULL,
    reason           text        CHECK (char_length(reason) BETWEEN 1 AND 500),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES crm_deals (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX crm_deal_stage_changes_deal_idx ON crm_deal_stage_changes (tenant_id, deal_id, at);

CREATE TABLE crm_activities (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id),
    id          uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'note', 'task')),
    subject     text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    body        text        CHECK (char_length(body) <= 20000),
    occurred_at timestamptz NOT NULL,
    lead_id     uuid,
    contact_id  uuid,
    company_id  uuid,
    deal_id     uuid,
    due_date    date,
    assignee_id uuid,
    done_at     timestamptz,
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES crm_leads (tenant_id, id) ON DELETE SET NULL (lead_id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES crm_contacts (tenant_id, id) ON DELETE SET NULL (contact_id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES crm_companies (tenant_id, id) ON DELETE SET NULL (company_id),
    FOREIGN KEY (tenant_id, deal_id) REFERENCES crm_deals (tenant_id, id) ON DELETE SET NULL (deal_id),
    CHECK ((kind = 'task') = (assignee_id IS NOT NULL)),
    CHECK (kind = 'task' OR (due_date IS NULL AND done_at IS NULL)),
    -- An activity is about something: deleting the only record it names
    -- deletes it first (the store does, in the deletion's transaction).
    CHECK (num_nonnulls(lead_id, contact_id, company_id, deal_id) >= 1)
);
CREATE INDEX crm_activities_lead_idx ON crm_activities (tenant_id, lead_id, occurred_at);
CREATE INDEX crm_activities_contact_idx ON crm_activities (tenant_id, contact_id, occurred_at);
CREATE INDEX crm_activities_company_idx ON crm_activities (tenant_id, company_id, occurred_at);
CREATE INDEX crm_activities_deal_idx ON crm_activities (tenant_id, deal_id, occurred_at);
CREATE INDEX crm_activities_assignee_idx ON crm_activities (tenant_id, assignee_id, due_date);

CREATE TABLE crm_tickets (
    tenant_id            uuid        NOT NULL REFERENCES tenants (id),
    id                   uuid        NOT NULL,
    number               bigint      NOT NULL CHECK (number > 0),
    subject              text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    description          text        NOT NULL CHECK (char_length(description) BETWEEN 1 AND 20000),
    requester_contact_id uuid,
    requester_user_id    uuid,
    priority             text        NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status               text        NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    assignee_id          uuid,
    first_response_due   timestamptz NOT NULL,
    resolution_due       timestamptz NOT NULL,
    first_responded_at   timestamptz,
    resolved_at          timestamptz,
    closed_at            timestamptz,
    sla_stopped_at       timestamptz,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    -- A contact with tickets is merged, not deleted.
    FOREIGN KEY (tenant_id, requester_contact_id) REFERENCES crm_contacts (tenant_id, id),
    CHECK ((requester_contact_id IS NULL) <> (requester_user_id IS NULL))
);
CREATE INDEX crm_tickets_status_idx ON crm_tickets (tenant_id, status, created_at);
CREATE INDEX crm_tickets_requester_idx ON crm_tickets (tenant_id, requester_contact_id);
CREATE INDEX crm_tickets_assignee_idx ON crm_tickets (tenant_id, assignee_id);

CREATE TABLE crm_ticket_comments (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    ticket_id      uuid        NOT NULL,
    -- NULL: the requester wrote it.
    author_user_id uuid,
    body           text        NOT NULL CHECK (char_length(body) BETWEEN 1 AND 20000),
    internal       boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES crm_tickets (tenant_id, id) ON DELETE CASCADE,
    CHECK (author_user_id IS NOT NULL OR NOT internal)
);
CREATE INDEX crm_ticket_comments_ticket_idx ON crm_ticket_comments (tenant_id, ticket_id, created_at);

-- A tenant's ticket SLA policy (absent: the domain's default).
CREATE TABLE crm_settings (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenants (id),
    sla_policy jsonb       NOT NULL CHECK (jsonb_typeof(sla_policy) = 'object'),
    updated_at timestamptz NOT NULL
);

-- Every merge of two duplicates: the merged record as it was, and what was re-pointed.
CREATE TABLE crm_merges (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id),
    id         uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('contact', 'company')),
    kept_id    uuid        NOT NULL,
    merged_id  uuid        NOT NULL,
    merged     jsonb       NOT NULL,
    repointed  jsonb       NOT NULL,
    merged_at  timestamptz NOT NULL,
    merged_by  uuid,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX crm_merges_kept_idx ON crm_merges (tenant_id, kept_id);

-- Search words: one row per word of a searchable record, and one per
-- lower-cased tag of a contact (kind `contact_tag`, whole tags only).
CREATE TABLE crm_search_terms (
    tenant_id uuid NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('contact', 'company', 'lead', 'contact_tag')),
    term      text COLLATE "C" NOT NULL,
    record_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, kind, term, record_id)
);
CREATE INDEX crm_search_terms_record_idx ON crm_search_terms (tenant_id, record_id);

-- The words of a text as the full-text parser splits and folds them; an
-- email or a domain is also split at its dots and its @.
CREATE FUNCTION crm_words(doc text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT left(word.lexeme, 100)), '{}')
    FROM unnest(to_tsvector('simple', coalesce(doc, '') || ' ' || regexp_replace(coalesce(doc, ''), '[@._+-]', ' ', 'g'))) AS word
$$;

CREATE FUNCTION crm_index_record() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    doc text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM crm_search_terms WHERE tenant_id = OLD.tenant_id AND record_id = OLD.id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        -- (a contact's keys go with it, by their foreign key)
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'contact' THEN
        doc := concat_ws(' ', NEW.first_name, NEW.last_name, NEW.display_name,
                         array_to_string(NEW.email_keys, ' '), array_to_string(NEW.phone_keys, ' '));
        DELETE FROM crm_contact_keys WHERE tenant_id = NEW.tenant_id AND contact_id = NEW.id;
        INSERT INTO crm_contact_keys (tenant_id, kind, key, contact_id)
            SELECT DISTINCT NEW.tenant_id, 'email', key, NEW.id FROM unnest(NEW.email_keys) AS key
            UNION
            SELECT DISTINCT NEW.tenant_id, 'phone', key, NEW.id FROM unnest(NEW.phone_keys) AS key;
        INSERT INTO crm_search_terms (tenant_id, kind, term, record_id)
            SELECT DISTINCT NEW.tenant_id, 'contact_tag', lower(tag), NEW.id FROM unnest(NEW.tags) AS tag;
    ELSIF TG_ARGV[0] = 'company' THEN
        doc := concat_ws(' ', NEW.name, NEW.domain);
    ELSE
        doc := concat_ws(' ', NEW.name, NEW.email, NEW.company_name);
    END IF;
    INSERT INTO crm_search_terms (tenant_id, kind, term, record_id)
        SELECT NEW.tenant_id, TG_ARGV[0], word, NEW.id FROM unnest(crm_words(doc)) AS word;
    RETURN NULL;
END
$$;

CREATE TRIGGER crm_contacts_index AFTER INSERT OR DELETE OR UPDATE OF first_name, last_name, display_name, email_keys, phone_keys, tags
    ON crm_contacts FOR EACH ROW EXECUTE FUNCTION crm_index_record('contact');
CREATE TRIGGER crm_companies_index AFTER INSERT OR DELETE OR UPDATE OF name, domain
    ON crm_companies FOR EACH ROW EXECUTE FUNCTION crm_index_record('company');
CREATE TRIGGER crm_leads_index AFTER INSERT OR DELETE OR UPDATE OF name, email, company_name
    ON crm_leads FOR EACH ROW EXECUTE FUNCTION crm_index_record('lead');

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['crm_companies', 'crm_contacts', 'crm_contact_keys', 'crm_pipelines', 'crm_stages',
                             'crm_leads', 'crm_deals', 'crm_deal_stage_changes', 'crm_activities', 'crm_tickets',
                             'crm_ticket_comments', 'crm_settings', 'crm_merges', 'crm_search_terms'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO portico_app, portico_platform', t);
    END LOOP;
END
$$;
-- Stage history and merges are records: never rewritten.
REVOKE UPDATE, DELETE ON crm_merges FROM portico_app, portico_platform;
REVOKE UPDATE ON crm_deal_stage_changes FROM portico_app, portico_platform;
