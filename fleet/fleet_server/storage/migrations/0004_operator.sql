-- The operator's side (sqlite_operator.py): when each device was last heard from, the tenant
-- audit log, the lifecycle of alarms, tenant webhooks and staged rollouts. IF NOT EXISTS keeps
-- the tables a SQLite file made before this migration existed.
CREATE TABLE IF NOT EXISTS device_seen (device_id TEXT PRIMARY KEY, last_seen DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
    seq @AUTOINC_PK@, at DOUBLE PRECISION NOT NULL, tenant TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant, seq);
CREATE TABLE IF NOT EXISTS alarm_status (
    device_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL,
    status TEXT NOT NULL, opened_at DOUBLE PRECISION NOT NULL, changed_at DOUBLE PRECISION NOT NULL,
    changed_by TEXT NOT NULL, escalation BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, type, source));
CREATE TABLE IF NOT EXISTS webhooks (
    tenant TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL,
    format TEXT NOT NULL, min_severity TEXT NOT NULL, PRIMARY KEY (tenant, name));
CREATE TABLE IF NOT EXISTS rollouts (
    name TEXT PRIMARY KEY, tenant TEXT NOT NULL, artifact TEXT NOT NULL, body TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
-- the rollout's state outside its JSON body, so an update can be conditional on it (replicas)
ALTER TABLE rollouts ADD COLUMN state TEXT;
