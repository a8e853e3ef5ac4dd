-- Issue #9: a vendor's bank account changed on Ramp holds its next payment.
-- `ramp_vendor_account_id` is the account a person accepted (first seen, or
-- confirmed after a change); `ramp_vendor_account_seen` is the different
-- account Ramp shows now, until someone confirms it.
alter table vendor_map add column ramp_vendor_account_seen text;
