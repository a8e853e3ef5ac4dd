-- Release protocol (issue #6, "exactly once against the documented Ramp").
-- (One live payment per bill, which lets a bill whose payment was cancelled
-- be approved again, is 0002's `payment_live_bill`.)

-- When the release job last sent `POST /bills` to Ramp for this payment. Ramp
-- does not de-duplicate on remote_id, so once a create may have reached Ramp
-- the job looks for the bill before it ever creates again.
alter table payment add column ramp_create_attempted_at bigint;
