-- Issue #6: fresh data, committed cash until the bank shows the debit, and
-- failure as a state a bill can be approved again from.
--
-- SQLite cannot drop the inline `unique` on payment.bill_id, so the table is
-- rebuilt. sqlx runs every migration in a transaction, where foreign keys
-- cannot be switched off, and dropping a table that others reference
-- deletes what they reference. So the two tables that reference `payment`
-- (custody_event, hygiene_item) are rebuilt with it: new tables referencing
-- `payment_new` are filled, the old ones dropped children first, then each
-- new table takes its name (renaming `payment_new` rewrites the references).

-- Policy: the oldest bank history an approval may rely on.
alter table client add column bank_history_max_age_secs bigint not null default 86400;
-- When the last scheduled re-read of the client's rails started: the next is
-- due a sync interval later, whether or not that one succeeded (a broken
-- connection is retried on the schedule, not on every sweep).
alter table client add column sync_started_at bigint;

-- When RowCol first stored a bank transaction: a payment's debit is in the
-- held balance only if the balance was read after its transaction appeared.
alter table bank_txn add column seen_at bigint;

create table payment_new (
    payment_id           text primary key,
    firm_id              text not null references firm (firm_id),
    client_id            text not null references client (client_id),
    bill_id              text not null references staged_bill (bill_id),
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
insert into payment_new select payment_id, firm_id, client_id, bill_id, amount_minor, currency,
    state, flag_reason, payment_arrival_date, ramp_bill_id, qbo_bill_payment_id, plaid_txn_id,
    paid_date, approved_by, created_at, updated_at from payment;

create table custody_event_new (
    payment_id  text not null references payment_new (payment_id),
    state       text not null,
    owner       text not null,
    actor       text not null,
    evidence    text not null,
    at          bigint not null,
    -- each step of the chain is reached once; a replayed event is a no-op
    primary key (payment_id, state)
);
insert into custody_event_new select payment_id, state, owner, actor, evidence, at
    from custody_event;

create table hygiene_item_new (
    hygiene_id   text primary key,
    firm_id      text not null references firm (firm_id),
    client_id    text references client (client_id),
    payment_id   text references payment_new (payment_id),
    severity     text not null,
    reason_code  text not null,
    detail       text not null,
    status       text not null default 'open',
    created_at   bigint not null,
    resolved_at  bigint
);
insert into hygiene_item_new select hygiene_id, firm_id, client_id, payment_id, severity,
    reason_code, detail, status, created_at, resolved_at from hygiene_item;

drop table hygiene_item;
drop table custody_event;
drop table payment;
alter table payment_new rename to payment;
alter table custody_event_new rename to custody_event;
alter table hygiene_item_new rename to hygiene_item;
create index hygiene_open on hygiene_item (firm_id, status);
create index payment_firm on payment (firm_id, client_id, created_at);
create index payment_ramp on payment (ramp_bill_id);
-- One live payment per bill: the database refuses a second approval, but a
-- bill whose payment failed or was cancelled can be approved again.
create unique index payment_live_bill on payment (bill_id)
    where state not in ('failed', 'cancelled', 'rejected');

