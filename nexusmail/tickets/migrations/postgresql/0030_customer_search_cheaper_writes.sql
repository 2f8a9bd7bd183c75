-- Cheaper writes to the customer search rows, on PostgreSQL: the SQLite migration of this
-- number explains it. Rebuilding a customer's row deleted and re-inserted it, trigrams
-- and all, three times for a customer created with a contact and a domain: 16 s became
-- 379 s for 100,000 such customers.
--
-- Two daemons may write the same customer's row at once. An append is an UPDATE: one
-- that waits for another's commit applies itself to the row that one left, so both
-- lines stay. A rebuild (a contact or domain changed or removed, a customer edited or
-- merged) first locks the row, then reads the three tables in a new statement, which
-- sees what the other committed; it updates the row in place rather than deleting it,
-- so an append waiting on it is not lost with a deleted row.

CREATE OR REPLACE FUNCTION nexusmail_customer_search_refresh(customer BIGINT) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM customer_search WHERE customer_id = customer FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM customers WHERE id = customer AND merged_into IS NULL) THEN
        DELETE FROM customer_search WHERE customer_id = customer;
        RETURN;
    END IF;
    INSERT INTO customer_search (customer_id, body)
        SELECT c.id, lower(concat_ws(E'\n', c.name, c.tax_id, c.email, c.phone, c.work_phone,
            (SELECT string_agg(concat_ws(E'\n', k.name, k.email, k.phone), E'\n')
             FROM contacts k WHERE k.customer_id = c.id),
            (SELECT string_agg(d.domain, E'\n')
             FROM customer_domains d WHERE d.customer_id = c.id)))
        FROM customers c WHERE c.id = customer
        ON CONFLICT (customer_id) DO UPDATE SET body = EXCLUDED.body
            WHERE customer_search.body IS DISTINCT FROM EXCLUDED.body;
END $$;

-- A new customer: no other transaction sees it yet, so its row is written from NEW
-- without a lock (the contacts and domains are read in case the FKs were deferred).
CREATE FUNCTION nexusmail_customer_search_customer_added() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.merged_into IS NULL THEN
        INSERT INTO customer_search (customer_id, body)
            VALUES (NEW.id, lower(concat_ws(E'\n', NEW.name, NEW.tax_id, NEW.email, NEW.phone,
                NEW.work_phone,
                (SELECT string_agg(concat_ws(E'\n', k.name, k.email, k.phone), E'\n')
                 FROM contacts k WHERE k.customer_id = NEW.id),
                (SELECT string_agg(d.domain, E'\n')
                 FROM customer_domains d WHERE d.customer_id = NEW.id))))
            ON CONFLICT (customer_id) DO UPDATE SET body = EXCLUDED.body;
    END IF;
    RETURN NULL;
END $$;

-- The lines the rebuild writes for one contact and for one domain; a merged customer has
-- no row, so nothing is appended for it.
CREATE FUNCTION nexusmail_customer_search_contact_added() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customer_search
        SET body = body || E'\n' || lower(concat_ws(E'\n', NEW.name, NEW.email, NEW.phone))
        WHERE customer_id = NEW.customer_id;
    RETURN NULL;
END $$;

CREATE FUNCTION nexusmail_customer_search_domain_added() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customer_search SET body = body || E'\n' || lower(NEW.domain)
        WHERE customer_id = NEW.customer_id;
    RETURN NULL;
END $$;

DROP TRIGGER customer_search_customer_added ON customers;
CREATE TRIGGER customer_search_customer_added AFTER INSERT ON customers
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_customer_added();
DROP TRIGGER customer_search_customer_changed ON customers;
CREATE TRIGGER customer_search_customer_changed
    AFTER UPDATE OF name, tax_id, email, phone, work_phone, merged_into ON customers
    FOR EACH ROW WHEN ((OLD.name, OLD.tax_id, OLD.email, OLD.phone, OLD.work_phone,
                        OLD.merged_into)
                       IS DISTINCT FROM (NEW.name, NEW.tax_id, NEW.email, NEW.phone,
                                         NEW.work_phone, NEW.merged_into))
    EXECUTE FUNCTION nexusmail_customer_search_customer();

DROP TRIGGER customer_search_contact ON contacts;
CREATE TRIGGER customer_search_contact_added AFTER INSERT ON contacts
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_contact_added();
CREATE TRIGGER customer_search_contact_changed
    AFTER UPDATE OF customer_id, name, email, phone ON contacts
    FOR EACH ROW WHEN ((OLD.customer_id, OLD.name, OLD.email, OLD.phone)
                       IS DISTINCT FROM (NEW.customer_id, NEW.name, NEW.email, NEW.phone))
    EXECUTE FUNCTION nexusmail_customer_search_part();
CREATE TRIGGER customer_search_contact_removed AFTER DELETE ON contacts
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_part();

DROP TRIGGER customer_search_domain ON customer_domains;
CREATE TRIGGER customer_search_domain_added AFTER INSERT ON customer_domains
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_domain_added();
CREATE TRIGGER customer_search_domain_changed AFTER UPDATE ON customer_domains
    FOR EACH ROW WHEN ((OLD.customer_id, OLD.domain) IS DISTINCT FROM (NEW.customer_id, NEW.domain))
    EXECUTE FUNCTION nexusmail_customer_search_part();
CREATE TRIGGER customer_search_domain_removed AFTER DELETE ON customer_domains
    FOR EACH ROW EXECUTE FUNCTION nexusmail_customer_search_part();
