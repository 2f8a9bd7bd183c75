-- What a contract covers by name: the service schedules it pays for (a schedule belongs
-- to at most one contract) and the customer's machines it lists.
ALTER TABLE schedules ADD COLUMN contract_id INTEGER REFERENCES contracts(id);
CREATE INDEX schedules_by_contract ON schedules(contract_id) WHERE contract_id IS NOT NULL;
CREATE TABLE contract_equipment (
    contract_id   INTEGER NOT NULL REFERENCES contracts(id),
    equipment_id  INTEGER NOT NULL REFERENCES equipment(id),
    PRIMARY KEY (contract_id, equipment_id)
) WITHOUT ROWID;
CREATE INDEX contract_equipment_by_equipment ON contract_equipment(equipment_id);
