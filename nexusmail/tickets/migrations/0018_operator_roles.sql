-- What an operator may do: admin (everything, operators and tokens included),
-- dispatcher (cases, customers, schedules) or viewer (read only). Operators made
-- before roles existed keep the full access they had.
ALTER TABLE operators ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- 1: they see and act only on interventions of customers they own (customers.owner).
ALTER TABLE operators ADD COLUMN own_customers_only INTEGER NOT NULL DEFAULT 0;
-- A token made for an operator acts as them, with their role and visibility; NULL: the
-- full access tokens always had. No foreign key: moving a store copies api_tokens before
-- operators, and a token of a removed operator is refused at lookup anyway.
ALTER TABLE api_tokens ADD COLUMN operator_id INTEGER;
