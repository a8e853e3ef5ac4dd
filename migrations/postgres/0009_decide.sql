-- Issue #16 (PostgreSQL twin of ../sqlite/0009_decide.sql): decide across the portfolio.
--
-- A client's approval policy is versioned: the `client` row holds the
-- current values (what every read model already reads) and `policy_version`;
-- `client_policy` keeps every version ever published, never edited. Both are
-- written by store::clients only.
alter table client add column dual_control_threshold_minor bigint not null default 1000000;
alter table client add column duplicate_window_days bigint not null default 7;
alter table client add column new_vendor_second_approver bigint not null default 0;
alter table client add column policy_version bigint not null default 1;

create table client_policy (
    client_id                     text not null references client (client_id),
    version                       bigint not null,
    buffer_days                   bigint not null,
    cash_max_age_secs             bigint not null,
    bank_history_max_age_secs     bigint not null,
    dual_control_threshold_minor  bigint not null,
    duplicate_window_days         bigint not null,
    new_vendor_second_approver    bigint not null,
    -- the admin who published it; null for a client's first (default) version
    created_by                    text references app_user (user_id),
    created_at                    bigint not null,
    primary key (client_id, version)
);
insert into client_policy (client_id, version, buffer_days, cash_max_age_secs,
    bank_history_max_age_secs, dual_control_threshold_minor, duplicate_window_days,
    new_vendor_second_approver, created_by, created_at)
select client_id, 1, buffer_days, cash_max_age_secs, bank_history_max_age_secs,
    dual_control_threshold_minor, duplicate_window_days, new_vendor_second_approver, null, created_at
from client;

-- Each approval of a payment is its own row: who, when, by which policy
-- version, what the rules said. One row per person and payment: nobody
-- approves one payment twice (the primary key refuses it). Written by
-- store::approvals only.
create table approval (
    payment_id      text not null references payment (payment_id),
    user_id         text not null references app_user (user_id),
    firm_id         text not null references firm (firm_id),
    -- 'first' | 'second'
    step            text not null check (step in ('first', 'second')),
    policy_version  bigint not null,
    -- JSON: the rules evaluated and what each said
    rules           text not null,
    -- an admin's written reason when a refusing rule was overridden
    override_reason text,
    at              bigint not null,
    primary key (payment_id, user_id),
    unique (payment_id, step)
);
create index approval_firm on approval (firm_id, at);

-- The payment remembers the policy version it was judged by, and whether an
-- admin overrode a rule to approve it.
alter table payment add column policy_version bigint;
alter table payment add column overridden bigint not null default 0;

-- A batch approval is idempotent by its key: each client's answer is stored
-- in that client's approval transaction, so a double submit, a reload or a
-- retry after a crash finds it and answers the same. Written by
-- store::approvals only.
create table approval_batch_client (
    firm_id     text not null references firm (firm_id),
    batch_key   text not null,
    client_id   text not null references client (client_id),
    user_id     text not null references app_user (user_id),
    -- JSON: this client's part of the batch answer
    answer      text not null,
    created_at  bigint not null,
    primary key (firm_id, batch_key, client_id)
);
