-- The same links as the SQLite migration of this number (which explains them).
ALTER TABLE schedules ADD COLUMN contract_id BIGINT REFERENCES contracts(id);
CREATE INDEX schedules_by_contract ON schedules(contract_id) WHERE contract_id IS NOT NULL;
CREATE TABLE contract_equipment (
    contract_id   BIGINT NOT NULL REFERENCES contracts(id),
    equipment_id  BIGINT NOT NULL REFERENCES equipment(id),
    PRIMARY KEY (contract_id, equipment_id)
);
CREATE INDEX contract_equipment_by_equipment ON contract_equipment(equipment_id);
