-- The tenant a secret operation concerns (NULL for server-wide ones: the token secret, the keyring,
-- a reseal), so the admin API can show a tenant its own trail. Rows written before this migration
-- get it from their subject; a device deleted before then has no row left to name its tenant.
ALTER TABLE secret_audit ADD COLUMN tenant TEXT;
UPDATE secret_audit SET tenant = substr(subject, 8) WHERE substr(subject, 1, 7) = 'tenant:';
UPDATE secret_audit SET tenant = (SELECT d.tenant FROM devices d WHERE 'device:' || d.id = secret_audit.subject)
    WHERE substr(subject, 1, 7) = 'device:';
CREATE INDEX secret_audit_tenant ON secret_audit (tenant, seq);
