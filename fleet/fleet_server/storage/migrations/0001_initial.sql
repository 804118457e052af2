-- The schema the SQLite-only server created before migrations existed (IF NOT EXISTS keeps such a
-- file as it is). Type names are ones both engines read the same way; @AUTOINC_PK@ and @BLOB@ are
-- the two spellings that differ (see migrate.py).
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    tenant TEXT PRIMARY KEY, api_key TEXT NOT NULL, roles TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, namespace TEXT NOT NULL, role TEXT NOT NULL,
    device_key TEXT NOT NULL, registration TEXT, created_at DOUBLE PRECISION NOT NULL,
    dropped_alarms BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY, device_id TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (device_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq @AUTOINC_PK@, device_id TEXT NOT NULL, action TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    device_id TEXT PRIMARY KEY, version BIGINT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    device_id TEXT PRIMARY KEY,
    reported TEXT NOT NULL DEFAULT '{}', version BIGINT NOT NULL DEFAULT 0,
    desired TEXT NOT NULL DEFAULT '{}', desired_version BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS alarms (
    device_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL,
    severity TEXT NOT NULL, count BIGINT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL, message TEXT,
    PRIMARY KEY (device_id, type, source));
CREATE TABLE IF NOT EXISTS artifacts (
    name TEXT PRIMARY KEY, tenant TEXT NOT NULL, manifest TEXT NOT NULL,
    size BIGINT NOT NULL, data @BLOB@ NOT NULL, created_at DOUBLE PRECISION NOT NULL);
