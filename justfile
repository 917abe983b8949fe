# Portico's task hub. `just` lists the recipes.
# Install just with `cargo install just` (the two README commands need nothing but cargo).

default:
    @just --list

# Run Portico with demo data on 127.0.0.1:8080 (finds or starts PostgreSQL).
run:
    cargo run

# Format check, lints, then every test (nextest when installed, else cargo test).
test: fmt-check lint
    if command -v cargo-nextest >/dev/null; then cargo nextest run --workspace && cargo test --workspace --doc; else cargo test --workspace; fi

# Lints with warnings as errors.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Check formatting.
fmt-check:
    cargo fmt --all --check

# Create the roles, the database, the schema and the platform tenant.
db-bootstrap:
    cargo run -- db bootstrap

# Apply pending migrations.
migrate:
    cargo run -- migrate

# Write the OpenAPI document to docs/openapi.json (a test fails while the committed copy is stale).
openapi:
    cargo run -q -- openapi > docs/openapi.json

# Load drivers (release build): the store's scoped transactions and credit debits, job
# throughput, the HTTP API (GET /api/v1/tenants/{id} from the cache, without it, and a route
# without database work), a bulk import of 100,000 people over HTTP beside its parse alone, and
# credit debits over HTTP (one hot wallet, 1,000 wallets), and usage events over HTTP (2 x
# 1,000,000 in batches of 1,000, then aggregations over one tenant's month).
bench:
    cargo bench -p portico-store
    cargo bench -p portico-worker
    cargo bench -p portico-bff --bench http
    cargo bench -p portico-bff --bench import
    cargo bench -p portico-bff --bench credits
    cargo bench -p portico-bff --bench usage
    cargo bench -p portico-bff --bench crm

# What CI runs.
ci:
    bash .ci/run
