-- Issue #18 §3: a second factor (TOTP, RFC 6238). The secret is sealed
-- (AES-GCM, bound to the user id) and never leaves the server after
-- enrolment; a code is accepted once (the last accepted time step is kept);
-- recovery codes are stored as SHA-256 hashes and each works once.
alter table app_user add column totp_secret text;
alter table app_user add column totp_enabled_at bigint;
alter table app_user add column totp_last_step bigint;
-- The firm's setting: anyone who approves payments must use the second
-- factor (off by default; the sandbox's demo firm starts with it off).
alter table firm add column totp_for_approvers bigint not null default 0;
create table recovery_code (
    user_id    text not null references app_user (user_id),
    code_hash  text not null,
    used_at    bigint,
    primary key (user_id, code_hash)
);
