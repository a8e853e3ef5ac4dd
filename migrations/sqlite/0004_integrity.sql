-- Issue #6, integrity: unique bank evidence, removed transactions kept,
-- pending → posted followed, and a verified audit checkpoint.
-- (Job lease fencing needs no column: `job.attempts` is bumped by every
-- claim, so it already is the claim's fencing token.)

-- Plaid `removed` marks a transaction; it is never deleted, so evidence a
-- payment pointed at stays inspectable.
alter table bank_txn add column removed_at bigint;
-- On a posted transaction: the pending one it replaces (Plaid's field).
alter table bank_txn add column pending_transaction_id text;
create index bank_txn_pending on bank_txn (client_id, pending_transaction_id);

-- One bank transaction evidences at most one payment.
create unique index payment_plaid_txn_once on payment (client_id, plaid_txn_id)
    where plaid_txn_id is not null;

-- The newest audit entry whose chain (from seq 1) was verified, so the next
-- view re-hashes only what came after it.
create table audit_checkpoint (
    firm_id      text primary key references firm (firm_id),
    seq          bigint not null,
    hash         text not null,
    verified_at  bigint not null
);
