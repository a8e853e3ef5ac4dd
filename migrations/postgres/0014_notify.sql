-- Issue #18 §5: notifications. Each person's choices (which critical items
-- reach them by email and by a Slack-compatible webhook, sealed at rest as
-- the URL is a secret) and when they last looked at their digest. No row:
-- the defaults for their role.
create table notify_setting (
    user_id         text primary key references app_user (user_id),
    email_topics    text not null,
    webhook_topics  text not null,
    webhook_sealed  text,
    digest_seen_at  bigint
);
-- One message to one recipient over one channel, at most once: the unique
-- key makes a second fan-out of the same item a no-op, and the state is
-- 'sending' while a send is in flight, so an attempt that died mid-send
-- becomes 'uncertain' instead of sending again. The message is sealed (an
-- invitation's carries its one-time link).
create table notification (
    notification_id  text primary key,
    firm_id          text not null references firm (firm_id),
    subject_key      text not null,
    recipient        text not null,
    user_id          text references app_user (user_id),
    channel          text not null check (channel in ('email', 'webhook')),
    to_address       text,
    message_sealed   text not null,
    state            text not null check (state in ('queued', 'sending', 'sent', 'failed', 'uncertain')),
    attempts         bigint not null default 0,
    last_error       text,
    created_at       bigint not null,
    sent_at          bigint,
    unique (subject_key, recipient, channel)
);
create index notification_user on notification (user_id, created_at);
