"""The customer archive: customers and their mail domains, contacts, sites, the installed
base (equipment by serial), request types, and merging duplicate customers.

Like tickets, plain functions: writes over the writer's connection (they run inside
`Store.write`), reads over a read connection, JSON-ready dicts out. The same SQL runs on
SQLite and PostgreSQL. A refused value raises InvalidRecord naming the field; a clash
with what is stored raises tickets.cases.Conflict; an unknown id tickets.cases.NotFound.
"""
