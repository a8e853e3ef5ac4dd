-- Sign-in failures, counted per account and per client address over a
-- sliding window (the throttle). Rows older than the window are pruned as
-- new failures arrive. In the database, not in memory, so several instances
-- share one count.
create table login_failure (
    login_failure_id text primary key,
    -- the normalised email tried (whether or not such a user exists)
    account          text not null,
    -- the client's IP address (the peer, or a trusted proxy's X-Forwarded-For)
    client_addr      text not null,
    at               bigint not null
);
create index login_failure_account on login_failure (account, at);
create index login_failure_client_addr on login_failure (client_addr, at);
create index login_failure_at on login_failure (at);
