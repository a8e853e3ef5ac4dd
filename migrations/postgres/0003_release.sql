-- Release protocol (issue #6, "exactly once against the documented Ramp" and
-- "release re-checks the ledger").

-- When the release job last sent `POST /bills` to Ramp for this payment. Ramp
-- does not de-duplicate on remote_id, so once a create may have reached Ramp
-- the job looks for the bill before it ever creates again.
alter table payment add column ramp_create_attempted_at bigint;

-- One LIVE payment per bill: a payment that ended without paying (cancelled
-- because the bill changed in the ledger, failed, rejected) no longer holds
-- the bill, so its current version can be approved again.
alter table payment drop constraint payment_bill_id_key;
create unique index payment_live_bill on payment (bill_id)
    where state not in ('cancelled', 'failed', 'rejected');
