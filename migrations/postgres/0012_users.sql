-- Issue #18 §3: people managed in the console. A deactivated person's
-- sessions end at once on every instance (each request reads the user and
-- finds them deactivated); they cannot sign in again.
alter table app_user add column deactivated_at bigint;

-- One-time links an admin hands out: an invitation (an email and a role)
-- or a password reset (for a person of the firm). Only the SHA-256 of the
-- token is kept; the link itself is shown once. A link is used at most
-- once, before it expires.
create table user_link (
    token_hash  text primary key,
    firm_id     text not null references firm (firm_id),
    purpose     text not null check (purpose in ('invite', 'reset')),
    email       text not null,
    role        text check (role in ('admin', 'advisor', 'viewer')),
    user_id     text references app_user (user_id),
    created_by  text not null,
    created_at  bigint not null,
    expires_at  bigint not null,
    used_at     bigint
);
create index user_link_firm on user_link (firm_id, created_at);
