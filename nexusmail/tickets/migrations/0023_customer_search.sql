-- What the customer search reads: one short row per customer not merged away, the values
-- it looks in (name, tax id, email, phones; each contact's name, email and phone; the
-- mail domains) one per line, in lower case (SQLite's lower() folds ASCII letters only).
-- A search then reads one narrow table instead of OR-ing LIKEs over customers, contacts
-- and mail domains; the lines are kept apart by the line break, which a search never
-- holds. Triggers keep the rows in step with the three tables, in the same transaction.
--
-- Not an FTS5 trigram index: rewriting one customer's row as its contact and mail domain
-- are added flushes FTS5's pending data at every statement, which made creating a
-- customer with a domain ~40 times slower (imports, mail from new senders); these rows
-- cost a B-tree write each.

CREATE TABLE customer_search (
    customer_id  INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    body         TEXT NOT NULL
);

-- What a customer's row holds, written once for the triggers below.
CREATE VIEW customer_search_source (id, body) AS
    SELECT c.id, lower(c.name || char(10) || coalesce(c.tax_id, '') || char(10)
        || coalesce(c.email, '') || char(10) || coalesce(c.phone, '') || char(10)
        || coalesce(c.work_phone, '')
        || coalesce((SELECT group_concat(char(10) || k.name || char(10)
                         || coalesce(k.email, '') || char(10) || coalesce(k.phone, ''), '')
                     FROM contacts k WHERE k.customer_id = c.id), '')
        || coalesce((SELECT group_concat(char(10) || d.domain, '')
                     FROM customer_domains d WHERE d.customer_id = c.id), ''))
    FROM customers c WHERE c.merged_into IS NULL;

INSERT INTO customer_search (customer_id, body) SELECT id, body FROM customer_search_source;

CREATE TRIGGER customer_search_customer_added AFTER INSERT ON customers BEGIN
    INSERT INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = new.id;
END;
CREATE TRIGGER customer_search_customer_changed
    AFTER UPDATE OF name, tax_id, email, phone, work_phone, merged_into ON customers BEGIN
    DELETE FROM customer_search WHERE customer_id = old.id;
    INSERT INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = new.id;
END;

CREATE TRIGGER customer_search_contact_added AFTER INSERT ON contacts BEGIN
    INSERT OR REPLACE INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = new.customer_id;
END;
CREATE TRIGGER customer_search_contact_changed
    AFTER UPDATE OF customer_id, name, email, phone ON contacts BEGIN
    DELETE FROM customer_search WHERE customer_id IN (old.customer_id, new.customer_id);
    INSERT INTO customer_search (customer_id, body) SELECT id, body
        FROM customer_search_source WHERE id IN (old.customer_id, new.customer_id);
END;
CREATE TRIGGER customer_search_contact_removed AFTER DELETE ON contacts BEGIN
    INSERT OR REPLACE INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = old.customer_id;
END;

CREATE TRIGGER customer_search_domain_added AFTER INSERT ON customer_domains BEGIN
    INSERT OR REPLACE INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = new.customer_id;
END;
CREATE TRIGGER customer_search_domain_changed AFTER UPDATE ON customer_domains BEGIN
    DELETE FROM customer_search WHERE customer_id IN (old.customer_id, new.customer_id);
    INSERT INTO customer_search (customer_id, body) SELECT id, body
        FROM customer_search_source WHERE id IN (old.customer_id, new.customer_id);
END;
CREATE TRIGGER customer_search_domain_removed AFTER DELETE ON customer_domains BEGIN
    INSERT OR REPLACE INTO customer_search (customer_id, body)
        SELECT id, body FROM customer_search_source WHERE id = old.customer_id;
END;

-- The list's order (folded name, then id) read from an index: a search matching most
-- customers walks it and stops at the page's end instead of sorting every match; the
-- owner's, for an operator limited to their own customers.
CREATE INDEX customers_by_folded_name ON customers(lower(name), id) WHERE merged_into IS NULL;
CREATE INDEX customers_by_owner_name ON customers(owner, lower(name), id)
    WHERE merged_into IS NULL;
