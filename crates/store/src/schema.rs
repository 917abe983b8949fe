//! Diesel's view of the tables (kept by hand, checked by the migration tests).

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        slug -> Text,
        contact_email -> Text,
        phone -> Nullable<Text>,
        industry -> Nullable<Text>,
        status -> Text,
        metadata -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        trial_ends_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (tenant_id, id) {
        tenant_id -> Uuid,
        id -> Uuid,
        actor_type -> Text,
        actor_id -> Nullable<Uuid>,
        actor_tenant_id -> Nullable<Uuid>,
        actor_name -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Text,
        changes -> Jsonb,
        request_id -> Text,
        occurred_at -> Timestamptz,
        ip -> Nullable<Inet>,
        user_agent -> Nullable<Text>,
    }
}

diesel::joinable!(audit_log -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(tenants, audit_log);
