-- Issue #18 §1: a tray that fixes. An item remembers the job it reports
-- (so it can be replayed and its attempts shown), who raised it (an
-- override's review is acknowledged by another admin), and how it was
-- closed: by whom (a person's email, or `rowcol` when the flag cleared
-- itself because the evidence arrived) and with what note.
alter table hygiene_item add column job_id text;
alter table hygiene_item add column opened_by text;
alter table hygiene_item add column closed_by text;
alter table hygiene_item add column close_note text;
-- The tray reads a firm's items newest first, open or closed.
create index hygiene_firm_created on hygiene_item (firm_id, created_at);
