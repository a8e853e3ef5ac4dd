-- Jobs due at the same instant run in the order they were enqueued: each
-- enqueue stamps `created_at` strictly after the newest job's (see
-- store::jobs::enqueue), and this index makes finding the newest cheap.
create index job_created_at on job (created_at);
