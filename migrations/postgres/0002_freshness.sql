-- Issue #6: fresh data, committed cash until the bank shows the debit, and
-- failure as a state a bill can be approved again from.

-- Policy: the oldest bank history an approval may rely on.
alter table client add column bank_history_max_age_secs bigint not null default 86400;
-- When the last scheduled re-read of the client's rails started: the next is
-- due a sync interval later, whether or not that one succeeded (a broken
-- connection is retried on the schedule, not on every sweep).
alter table client add column sync_started_at bigint;

-- When RowCol first stored a bank transaction: a payment's debit is in the
-- held balance only if the balance was read after its transaction appeared.
alter table bank_txn add column seen_at bigint;

-- One live payment per bill: the database refuses a second approval, but a
-- bill whose payment failed or was cancelled can be approved again.
alter table payment drop constraint payment_bill_id_key;
create unique index payment_live_bill on payment (bill_id)
    where state not in ('failed', 'cancelled', 'rejected');
