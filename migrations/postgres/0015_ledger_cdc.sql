-- Issue #19 §1: QBO is read incrementally through CDC after a full read.
-- When the last full read happened: a day later the next read is full
-- again (Intuit's own advice for CDC is a daily catch-up; here the catch-up
-- is the full query, and CDC the reads in between).
alter table rail_connection add column full_synced_at bigint;
