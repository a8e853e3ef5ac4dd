-- Issue #16 §7: a revision number per client that changes whenever
-- anything the approval rules read of its bills changes, so the approvals
-- page can keep each client's bills in memory and re-read only the clients
-- whose revision moved. Written by these triggers only (no module writes
-- it), so no writer of staged_bill or payment can forget to bump it; the
-- bump commits in the same transaction as the change it reports.
--
-- A sync rewrites every open bill (synced_at) without changing it: only
-- the columns the rules read count, and of a payment only its state (live
-- or not).
create table client_revision (
    client_id  text primary key references client (client_id),
    rev        bigint not null
);

create trigger staged_bill_revision_insert after insert on staged_bill begin
    insert into client_revision (client_id, rev) values (new.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

create trigger staged_bill_revision_update after update on staged_bill
when old.client_id is not new.client_id or old.qbo_vendor_id is not new.qbo_vendor_id
  or old.vendor_name is not new.vendor_name or old.doc_number is not new.doc_number
  or old.amount_minor is not new.amount_minor or old.balance_minor is not new.balance_minor
  or old.currency is not new.currency or old.txn_date is not new.txn_date
  or old.due_date is not new.due_date or old.status is not new.status
begin
    insert into client_revision (client_id, rev) values (new.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
    insert into client_revision (client_id, rev) values (old.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

create trigger staged_bill_revision_delete after delete on staged_bill begin
    insert into client_revision (client_id, rev) values (old.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

create trigger payment_revision_insert after insert on payment begin
    insert into client_revision (client_id, rev) values (new.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

create trigger payment_revision_update after update on payment
when old.state is not new.state or old.client_id is not new.client_id
  or old.bill_id is not new.bill_id
begin
    insert into client_revision (client_id, rev) values (new.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
    insert into client_revision (client_id, rev) values (old.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

create trigger payment_revision_delete after delete on payment begin
    insert into client_revision (client_id, rev) values (old.client_id, 1)
    on conflict (client_id) do update set rev = client_revision.rev + 1;
end;

-- The approvals table's page is the firm's open bills in due-date order;
-- with each client's bills kept in memory this index is what is left to
-- gain (bench: page p95 32-37 -> 23 ms at 10,000 bills; PostgreSQL has its
-- twin). SQLite plans without statistics: a client's own reads
-- (`firm_id = ? and client_id = ? and status = ?`) would tie between it and
-- `(client_id, status, due_date)` and could scan the whole firm (the batch
-- bench went from 90 to 250 ms), so the client's index leads with the firm
-- too and wins on one more equality. Reads by client alone use the unique
-- `(client_id, qbo_bill_id)`.
create index staged_bill_firm_open on staged_bill (firm_id, status, due_date);
drop index staged_bill_client;
create index staged_bill_client on staged_bill (firm_id, client_id, status, due_date);
