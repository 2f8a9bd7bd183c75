-- What the customer search reads, on PostgreSQL: the SQLite migration of this number
-- explains it. Here the rows' lower case folds every letter, a trigram index serves
-- `body LIKE '%...%'`, and the order indexes use the byte order the search sorts by on
-- both stores.

CREATE TABLE customer_search (
    customer_id  BIGINT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    body         TEXT NOT NULL
);
CREATE INDEX customer_search_trgm ON customer_search USING gin (body gin_trgm_ops);

-- Rewrites one customer's row from the three tables. The DELETE first waits for another
-- daemon's refresh of the same customer, and the INSERT, a new statement, then sees
-- what that one committed (a single upsert would write what its snapshot saw).
CREATE FUNCTION nexusmail_customer_search_refresh(customer BIGINT) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_search WHERE customer_id = customer;
    INSERT INTO customer_search (customer_id, body)
        SELECT c.id, lower(concat_ws(E'\n', c.name, c.tax_id, c.email, c.phone, c.work_phone,
            (SELECT string_agg(concat_ws(E'\n', k.name, k.email, k.phone), E'\n')
             FROM contacts k WHERE k.customer_id = c.id),
            (SELECT string_agg(d.domain, E'\n')
             FROM customer_domains d WHERE d.customer_id = c.id)))
        FROM customers c WHERE c.id = customer AND c.merged_into IS NULL
        ON CONFLICT (customer_id) DO UPDATE SET body = EXCLUDED.body;
END $$;

CREATE FUNCTION nexusmail_customer_search_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nexusmail_customer_search_refresh(NEW.id);
    RETURN NULL;
END $$;

-- For contacts and customer_domains: the customer it belonged to and the one it belongs to.
CREATE FUNCTION nexusmail_customer_search_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM nexusmail_customer_search_refresh(OLD.customer_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.customer_id <> OLD.customer_id) THEN
        PERFORM nexusmail_customer_search_refresh(NEW.customer_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER customer_search_customer_added AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_customer();
CREATE TRIGGER customer_search_customer_changed
    AFTER UPDATE OF name, tax_id, email, phone, work_phone, merged_into ON customers
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_customer();
CREATE TRIGGER customer_search_contact AFTER INSERT OR DELETE
    OR UPDATE OF customer_id, name, email, phone ON contacts
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_part();
CREATE TRIGGER customer_search_domain AFTER INSERT OR DELETE OR UPDATE ON customer_domains
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_part();

SELECT nexusmail_customer_search_refresh(id) FROM customers WHERE merged_into IS NULL;

CREATE INDEX customers_by_folded_name ON customers ((lower(name) COLLATE "C"), id)
    WHERE merged_into IS NULL;
CREATE INDEX customers_by_owner_name ON customers (owner, (lower(name) COLLATE "C"), id)
    WHERE merged_into IS NULL;
