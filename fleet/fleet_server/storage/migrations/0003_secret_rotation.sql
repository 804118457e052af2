-- Key rotation with a grace period (the previous key, still accepted until prev_key_until) and
-- the audit trail of every secret operation.
ALTER TABLE devices ADD COLUMN prev_device_key TEXT;
ALTER TABLE devices ADD COLUMN prev_key_until DOUBLE PRECISION;
ALTER TABLE tenants ADD COLUMN prev_api_key TEXT;
ALTER TABLE tenants ADD COLUMN prev_key_until DOUBLE PRECISION;
CREATE TABLE secret_audit (
    seq @AUTOINC_PK@, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX secret_audit_subject ON secret_audit (subject, seq);
