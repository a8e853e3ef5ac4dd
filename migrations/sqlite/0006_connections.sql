-- Connections made by people (issue #8): OAuth grants with refresh tokens,
-- Plaid Link, pasted keys; their health; and the flows that make them.
--
-- rail_connection is rebuilt (SQLite cannot drop a table constraint): an
-- account (realm, business, item, Stripe account) may now be connected to
-- one client per FIRM, not one in all RowCol, and a connection has its own
-- id, which sealed tokens are bound to.

create table rail_connection_v6 (
    connection_id          text not null unique,
    firm_id                text not null references firm (firm_id),
    client_id              text not null references client (client_id),
    rail                   text not null check (rail in ('qbo', 'ramp', 'plaid', 'stripe')),
    -- realmId / Ramp business id / Plaid item id / Stripe account id
    external_id            text not null,
    -- what the provider calls the account (QBO company name, bank ••mask, …)
    account_name           text,
    status                 text not null default 'active'
                           check (status in ('active', 'needs_reconnect', 'disconnected')),
    -- sealed (seal crate, bound to connection_id); null once disconnected
    token_sealed           text,
    refresh_sealed         text,
    -- wall-clock unix ms, as the provider stamps them; null: does not expire
    access_expires_at      bigint,
    refresh_expires_at     bigint,
    -- bumped by every token write: a refresh stores its result only over
    -- the version it refreshed
    token_version          bigint not null default 0,
    -- one refresher at a time (wall-clock unix ms)
    refresh_claimed_until  bigint,
    -- 'oauth' | 'link' | 'api_key' | 'seed'
    method                 text not null default 'seed',
    connected_by           text,
    connected_at           bigint,
    last_error             text,
    last_error_at          bigint,
    last_success_at        bigint,
    -- Ramp: the entity and its bill-pay bank account, found by sync
    entity_id              text,
    source_bank_account_id text,
    -- Plaid transactions/sync cursor
    sync_cursor            text,
    synced_at              bigint,
    -- Ramp: this connection's webhook subscription and its secret (sealed)
    webhook_subscription_id text,
    webhook_secret_sealed  text,
    webhook_status         text,
    primary key (client_id, rail)
);

insert into rail_connection_v6 (connection_id, firm_id, client_id, rail, external_id, token_sealed,
                                status, entity_id, source_bank_account_id, sync_cursor, synced_at,
                                connected_at, connected_by)
select 'conn_' || lower(hex(randomblob(16))), c.firm_id, r.client_id, r.rail, r.external_id, r.token_sealed,
       case when r.status = 'active' then 'active' else 'needs_reconnect' end,
       r.entity_id, r.source_bank_account_id, r.sync_cursor, r.synced_at, c.created_at, 'rowcol'
from rail_connection r join client c on c.client_id = r.client_id;

drop table rail_connection;
alter table rail_connection_v6 rename to rail_connection;

create unique index rail_connection_account on rail_connection (firm_id, rail, external_id)
    where status <> 'disconnected';
create index rail_connection_external on rail_connection (rail, external_id);
create index rail_connection_expiry on rail_connection (status, access_expires_at);

-- A connect flow in progress: the OAuth `state` (or Plaid Link session) it
-- is waiting for. Only the state's SHA-256 is stored; the flow is bound to
-- the session that started it and used once.
create table connect_flow (
    flow_id          text primary key,
    firm_id          text not null references firm (firm_id),
    user_id          text not null references app_user (user_id),
    -- SHA-256 of a nonce kept in the starting session
    session_binding  text not null,
    rail             text not null check (rail in ('qbo', 'ramp', 'plaid', 'stripe')),
    -- null: "add a client from QBO" (the client is created by the callback)
    client_id        text references client (client_id),
    -- 'connect' | 'reconnect' | 'update' (Plaid Link update mode)
    purpose          text not null,
    -- PKCE verifier / Plaid link token, sealed bound to flow_id
    secret_sealed    text,
    created_at       bigint not null,
    expires_at       bigint not null,
    used_at          bigint
);
create index connect_flow_expiry on connect_flow (expires_at);
