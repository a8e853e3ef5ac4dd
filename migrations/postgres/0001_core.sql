-- RowCol core schema (PostgreSQL). The SQLite twin in ../sqlite has the same
-- numbering and meaning. Instants are BIGINT unix milliseconds (UTC); calendar
-- dates are TEXT 'YYYY-MM-DD'; money is BIGINT minor units + TEXT currency.

create table firm (
    firm_id     text primary key,
    name        text not null,
    -- head of this firm's audit hash chain; bumped in the appending transaction
    audit_seq   bigint not null default 0,
    audit_head  text not null default '',
    created_at  bigint not null
);

create table app_user (
    user_id       text primary key,
    firm_id       text not null references firm (firm_id),
    email         text not null unique,
    name          text not null,
    role          text not null check (role in ('admin', 'advisor', 'viewer')),
    -- argon2id PHC string; never leaves the server
    password_hash text not null,
    created_at    bigint not null
);

create table client (
    client_id          text primary key,
    firm_id            text not null references firm (firm_id),
    name               text not null,
    currency           text not null,
    -- liquidity guardrail policy
    buffer_days        bigint not null default 14,
    cash_max_age_secs  bigint not null default 900,
    created_at         bigint not null
);
create index client_firm on client (firm_id, name);

create table rail_connection (
    client_id      text not null references client (client_id),
    rail           text not null check (rail in ('qbo', 'ramp', 'plaid', 'stripe')),
    -- realmId / Ramp business id / Plaid item id
    external_id    text not null,
    -- AES-256-GCM sealed access token (base64 nonce||ciphertext)
    token_sealed   text not null,
    status         text not null default 'active',
    -- Ramp: the entity and its bill-pay bank account, found by sync
    entity_id      text,
    source_bank_account_id text,
    -- Plaid transactions/sync cursor
    sync_cursor    text,
    synced_at      bigint,
    primary key (client_id, rail),
    unique (rail, external_id)
);

create table vendor_map (
    client_id              text not null references client (client_id),
    qbo_vendor_id          text not null,
    ramp_vendor_id         text not null,
    ramp_contact_id        text,
    ramp_vendor_account_id text,
    name                   text not null,
    primary key (client_id, qbo_vendor_id)
);

create table staged_bill (
    bill_id        text primary key,
    firm_id        text not null references firm (firm_id),
    client_id      text not null references client (client_id),
    qbo_bill_id    text not null,
    qbo_vendor_id  text not null,
    vendor_name    text not null,
    doc_number     text,
    amount_minor   bigint not null,
    balance_minor  bigint not null,
    currency       text not null,
    txn_date       text not null,
    due_date       text not null,
    -- 'open' while QBO shows a balance; 'closed' once the ledger shows it paid
    status         text not null default 'open',
    synced_at      bigint not null,
    unique (client_id, qbo_bill_id)
);
create index staged_bill_client on staged_bill (client_id, status, due_date);

create table cash_snapshot (
    client_id        text primary key references client (client_id),
    account_id       text not null,
    available_minor  bigint not null,
    current_minor    bigint not null,
    currency         text not null,
    as_of            bigint not null
);

create table bank_txn (
    client_id     text not null references client (client_id),
    txn_id        text not null,
    account_id    text not null,
    -- Plaid's sign: positive is money out of the account
    amount_minor  bigint not null,
    currency      text not null,
    txn_date      text not null,
    name          text not null,
    pending       bigint not null default 0,
    primary key (client_id, txn_id)
);
create index bank_txn_date on bank_txn (client_id, txn_date);

create table payment (
    payment_id           text primary key,
    firm_id              text not null references firm (firm_id),
    client_id            text not null references client (client_id),
    -- one payment per bill: the database refuses a second approval
    bill_id              text not null unique references staged_bill (bill_id),
    amount_minor         bigint not null,
    currency             text not null,
    state                text not null,
    -- open discrepancy (hygiene) reason, null when clean
    flag_reason          text,
    payment_arrival_date text not null,
    ramp_bill_id         text,
    qbo_bill_payment_id  text,
    plaid_txn_id         text,
    paid_date            text,
    approved_by          text not null references app_user (user_id),
    created_at           bigint not null,
    updated_at           bigint not null
);
create index payment_firm on payment (firm_id, client_id, created_at);
create index payment_ramp on payment (ramp_bill_id);

create table custody_event (
    payment_id  text not null references payment (payment_id),
    state       text not null,
    owner       text not null,
    actor       text not null,
    evidence    text not null,
    at          bigint not null,
    -- each step of the chain is reached once; a replayed event is a no-op
    primary key (payment_id, state)
);

create table job (
    job_id       text primary key,
    kind         text not null,
    payload      text not null,
    state        text not null default 'queued' check (state in ('queued', 'done', 'dead')),
    attempts     bigint not null default 0,
    run_at       bigint not null,
    -- a claimed job is leased; an expired lease (crashed worker) makes it claimable again
    lease_until  bigint,
    last_error   text,
    -- at most one live job per key (e.g. one release per payment)
    dedupe_key   text unique,
    created_at   bigint not null,
    updated_at   bigint not null
);
create index job_due on job (state, run_at);

create table job_attempt (
    job_id       text not null references job (job_id),
    attempt      bigint not null,
    started_at   bigint not null,
    finished_at  bigint not null,
    outcome      text not null,
    error_code   text,
    error        text,
    next_run_at  bigint,
    primary key (job_id, attempt)
);

create table webhook_inbox (
    inbox_id     text primary key,
    rail         text not null,
    event_id     text not null,
    event_type   text not null,
    headers      text not null,
    body         text not null,
    received_at  bigint not null,
    status       text not null default 'received',
    processed_at bigint,
    -- the rail's event id: a redelivered event is stored once and processed once
    unique (rail, event_id)
);

create table security_event (
    security_event_id text primary key,
    kind              text not null,
    source            text not null,
    detail            text not null,
    at                bigint not null
);

create table hygiene_item (
    hygiene_id   text primary key,
    firm_id      text not null references firm (firm_id),
    client_id    text references client (client_id),
    payment_id   text references payment (payment_id),
    severity     text not null,
    reason_code  text not null,
    detail       text not null,
    status       text not null default 'open',
    created_at   bigint not null,
    resolved_at  bigint
);
create index hygiene_open on hygiene_item (firm_id, status);

create table audit_entry (
    firm_id    text not null references firm (firm_id),
    seq        bigint not null,
    at         bigint not null,
    actor      text not null,
    action     text not null,
    subject    text not null,
    detail     text not null,
    prev_hash  text not null,
    hash       text not null,
    primary key (firm_id, seq)
);

-- The audit log is append-only: the database itself refuses edits.
create function audit_entry_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_entry is append-only';
end;
$$;
create trigger audit_entry_no_update before update or delete on audit_entry
    for each row execute function audit_entry_append_only();
create trigger audit_entry_no_truncate before truncate on audit_entry
    for each statement execute function audit_entry_append_only();

create table sandbox_state (
    sandbox_id  text primary key,
    state       text not null,
    updated_at  bigint not null
);
