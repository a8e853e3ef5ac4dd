-- Release protocol (issue #6, "exactly once against the documented Ramp" and
-- "release re-checks the ledger").
--
-- SQLite cannot drop a column's UNIQUE constraint, so `payment` is rebuilt.
-- Migrations run in one transaction with foreign keys on: the checks are
-- deferred to commit, and every row is put back under its old id before it,
-- so custody_event and hygiene_item rows find their payment again (an
-- orphan would fail the commit).
pragma defer_foreign_keys = on;

create table payment_0003 as select * from payment;
drop table payment;

create table payment (
    payment_id           text primary key,
    firm_id              text not null references firm (firm_id),
    client_id            text not null references client (client_id),
    -- one LIVE payment per bill: see payment_live_bill below
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
    updated_at           bigint not null,
    -- When the release job last sent `POST /bills` to Ramp for this payment.
    -- Ramp does not de-duplicate on remote_id, so once a create may have
    -- reached Ramp the job looks for the bill before it ever creates again.
    ramp_create_attempted_at bigint
);
insert into payment (payment_id, firm_id, client_id, bill_id, amount_minor, currency, state,
    flag_reason, payment_arrival_date, ramp_bill_id, qbo_bill_payment_id, plaid_txn_id,
    paid_date, approved_by, created_at, updated_at)
select payment_id, firm_id, client_id, bill_id, amount_minor, currency, state,
    flag_reason, payment_arrival_date, ramp_bill_id, qbo_bill_payment_id, plaid_txn_id,
    paid_date, approved_by, created_at, updated_at
from payment_0003;
drop table payment_0003;

create index payment_firm on payment (firm_id, client_id, created_at);
create index payment_ramp on payment (ramp_bill_id);
-- One LIVE payment per bill: a payment that ended without paying (cancelled
-- because the bill changed in the ledger, failed, rejected) no longer holds
-- the bill, so its current version can be approved again.
create unique index payment_live_bill on payment (bill_id)
    where state not in ('cancelled', 'failed', 'rejected');
