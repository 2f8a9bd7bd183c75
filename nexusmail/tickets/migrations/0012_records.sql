-- The customer archive behind every intervention: customers with their mail domains and
-- owner, contacts, sites, the installed base (equipment by serial), request types, and
-- the intervention's links to them.
--
-- Conventions kept from the first schema: timestamps are UTC ISO 8601 text from the
-- injected clock, flags are 0/1 integers, dates (installed_on, warranty_until,
-- requested_at) are ISO text that compares as text.
--
-- An owner (customers.owner, interventions.owner) is the owning operator's email, lower
-- case, as the JSON shows it, not an operator id: the configured default owner must work
-- before that operator first exists or logs in, and a retired operator's records stay
-- readable. Writers check that the operator exists when an owner is set by hand.

ALTER TABLE customers ADD COLUMN work_phone TEXT;
ALTER TABLE customers ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN owner TEXT;
-- A customer merged into another keeps its row (so old links and numbers still say where
-- it went) but is no longer listed or matched: everything it had now belongs to `into`.
ALTER TABLE customers ADD COLUMN merged_into INTEGER REFERENCES customers(id);
ALTER TABLE customers ADD COLUMN updated_at TEXT;

CREATE INDEX customers_by_tax_id ON customers(tax_id) WHERE tax_id IS NOT NULL;
CREATE INDEX customers_by_email ON customers(email) WHERE email IS NOT NULL;
CREATE INDEX customers_by_phone ON customers(phone) WHERE phone IS NOT NULL;
CREATE INDEX customers_by_name ON customers(name);

-- The mail domains a customer writes from (rossi-srl.it), lower case, without "@". One
-- domain belongs to one customer: an unknown sender at that domain is theirs.
CREATE TABLE customer_domains (
    domain       TEXT PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id)
) WITHOUT ROWID;
CREATE INDEX customer_domains_by_customer ON customer_domains(customer_id);

ALTER TABLE contacts ADD COLUMN preferred_channel TEXT;      -- email | phone; NULL: not said
ALTER TABLE contacts ADD COLUMN language TEXT;               -- en | it | ro; NULL: the customer's
CREATE INDEX contacts_by_customer ON contacts(customer_id, id);
CREATE INDEX contacts_by_phone ON contacts(phone) WHERE phone IS NOT NULL;

-- Where the technician drives to: a customer's plants, shops, flats.
CREATE TABLE sites (
    id            INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers(id),
    name          TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    access_notes  TEXT NOT NULL DEFAULT '',   -- keys, opening hours, who lets you in
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
-- A site is named within its customer (imports find or create it by that name).
CREATE UNIQUE INDEX sites_by_customer_name ON sites(customer_id, name);

-- The installed base: each machine by its serial number, unique per customer (two
-- manufacturers may print the same serial, one customer's archive may not hold it twice).
CREATE TABLE equipment (
    id              INTEGER PRIMARY KEY,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    site_id         INTEGER REFERENCES sites(id),
    serial          TEXT NOT NULL,
    model           TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    installed_on    TEXT,                    -- YYYY-MM-DD
    warranty_until  TEXT,                    -- YYYY-MM-DD, the last day covered
    notes           TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (customer_id, serial)
);
CREATE INDEX equipment_by_serial ON equipment(serial);
CREATE INDEX equipment_by_site ON equipment(site_id) WHERE site_id IS NOT NULL;

-- The list of request types; an intervention's request_type holds one of these codes or,
-- as before, free text.
CREATE TABLE request_types (
    code              TEXT PRIMARY KEY,            -- service_schedule, repair, ...
    name_en           TEXT NOT NULL DEFAULT '',
    name_it           TEXT NOT NULL DEFAULT '',
    name_ro           TEXT NOT NULL DEFAULT '',
    default_priority  TEXT NOT NULL DEFAULT 'normal',   -- low | normal | high | urgent
    position          INTEGER NOT NULL DEFAULT 0         -- order in pick lists
);
-- Who gets a new case of this type unless someone says otherwise.
CREATE TABLE request_type_assignees (
    request_type  TEXT NOT NULL REFERENCES request_types(code),
    employee_id   INTEGER NOT NULL REFERENCES employees(id),
    PRIMARY KEY (request_type, employee_id)
) WITHOUT ROWID;

INSERT INTO request_types (code, name_en, name_it, name_ro, default_priority, position)
    VALUES ('service_schedule', 'Service schedule', 'Manutenzione programmata',
            'Programare service', 'normal', 0);

ALTER TABLE interventions ADD COLUMN site_id INTEGER REFERENCES sites(id);
ALTER TABLE interventions ADD COLUMN equipment_id INTEGER REFERENCES equipment(id);
ALTER TABLE interventions ADD COLUMN channel TEXT;          -- mail | phone | visit | web | schedule
ALTER TABLE interventions ADD COLUMN requested_at TEXT;     -- when the customer asked, as stated
ALTER TABLE interventions ADD COLUMN owner TEXT;            -- the owning operator's email
-- Why a case is on hold or was closed (status: open | on_hold | closed).
ALTER TABLE interventions ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
-- Cases opened before this migration came by mail or by a schedule; the API's cannot say.
UPDATE interventions SET channel = CASE source WHEN 'email' THEN 'mail'
                                               WHEN 'schedule' THEN 'schedule' END;

CREATE INDEX interventions_by_equipment ON interventions(equipment_id, number)
    WHERE equipment_id IS NOT NULL;
CREATE INDEX interventions_by_site ON interventions(site_id, number) WHERE site_id IS NOT NULL;
