-- A request type may say whether its cases end with the customer's closing mail
-- (1: send, 0: do not, NULL: follow [reports] customer_closing_mail). An
-- intervention's own notify_customer_on_resolve still wins over the type's choice.
ALTER TABLE request_types ADD COLUMN customer_closing_mail INTEGER;
