-- Aggregates keyed by unit before period: a report reads, for each unit of
-- its subtree, a few short ranges of periods (a stock's prefix sum: one
-- range per grain) instead of the rows of every unit in those periods.
-- Transfers are keyed by the unit left and indexed by the unit reached,
-- covering, so both sides of a row's border are ranges too. The rows are
-- the same: the projection's version does not change.

-- +goose Up
CREATE TABLE flow_new (
    grain            INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    unit             TEXT NOT NULL,
    received_online  INTEGER NOT NULL,
    received_direct  INTEGER NOT NULL,
    received_postal  INTEGER NOT NULL,
    resolved_early   INTEGER NOT NULL,
    resolved_on_time INTEGER NOT NULL,
    resolved_late    INTEGER NOT NULL,
    withdrawn        INTEGER NOT NULL,
    PRIMARY KEY (grain, unit, period)
) WITHOUT ROWID;
INSERT INTO flow_new SELECT * FROM flow;
DROP TABLE flow;
ALTER TABLE flow_new RENAME TO flow;

CREATE TABLE flow_proc_new (
    grain            INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    procedure        TEXT NOT NULL,
    unit             TEXT NOT NULL,
    received_online  INTEGER NOT NULL,
    received_direct  INTEGER NOT NULL,
    received_postal  INTEGER NOT NULL,
    resolved_early   INTEGER NOT NULL,
    resolved_on_time INTEGER NOT NULL,
    resolved_late    INTEGER NOT NULL,
    withdrawn        INTEGER NOT NULL,
    PRIMARY KEY (grain, unit, period, procedure)
) WITHOUT ROWID;
INSERT INTO flow_proc_new SELECT * FROM flow_proc;
DROP TABLE flow_proc;
ALTER TABLE flow_proc_new RENAME TO flow_proc;

CREATE TABLE stock_new (
    grain   INTEGER NOT NULL,
    period  INTEGER NOT NULL,
    unit    TEXT NOT NULL,
    open    INTEGER NOT NULL,
    paused  INTEGER NOT NULL,
    overdue INTEGER NOT NULL,
    PRIMARY KEY (grain, unit, period)
) WITHOUT ROWID;
INSERT INTO stock_new SELECT * FROM stock;
DROP TABLE stock;
ALTER TABLE stock_new RENAME TO stock;

CREATE TABLE stock_proc_new (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    unit      TEXT NOT NULL,
    open      INTEGER NOT NULL,
    paused    INTEGER NOT NULL,
    overdue   INTEGER NOT NULL,
    PRIMARY KEY (grain, unit, period, procedure)
) WITHOUT ROWID;
INSERT INTO stock_proc_new SELECT * FROM stock_proc;
DROP TABLE stock_proc;
ALTER TABLE stock_proc_new RENAME TO stock_proc;

CREATE TABLE transfer_new (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, from_unit, period, to_unit)
) WITHOUT ROWID;
INSERT INTO transfer_new SELECT * FROM transfer;
DROP TABLE transfer;
ALTER TABLE transfer_new RENAME TO transfer;
CREATE INDEX transfer_to ON transfer (grain, to_unit, period, from_unit, n);

CREATE TABLE transfer_proc_new (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, from_unit, period, procedure, to_unit)
) WITHOUT ROWID;
INSERT INTO transfer_proc_new SELECT * FROM transfer_proc;
DROP TABLE transfer_proc;
ALTER TABLE transfer_proc_new RENAME TO transfer_proc;
CREATE INDEX transfer_proc_to ON transfer_proc (grain, to_unit, period, procedure, from_unit, n);

-- +goose Down
CREATE TABLE flow_old (
    grain            INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    unit             TEXT NOT NULL,
    received_online  INTEGER NOT NULL,
    received_direct  INTEGER NOT NULL,
    received_postal  INTEGER NOT NULL,
    resolved_early   INTEGER NOT NULL,
    resolved_on_time INTEGER NOT NULL,
    resolved_late    INTEGER NOT NULL,
    withdrawn        INTEGER NOT NULL,
    PRIMARY KEY (grain, period, unit)
) WITHOUT ROWID;
INSERT INTO flow_old SELECT * FROM flow;
DROP TABLE flow;
ALTER TABLE flow_old RENAME TO flow;

CREATE TABLE flow_proc_old (
    grain            INTEGER NOT NULL,
    period           INTEGER NOT NULL,
    procedure        TEXT NOT NULL,
    unit             TEXT NOT NULL,
    received_online  INTEGER NOT NULL,
    received_direct  INTEGER NOT NULL,
    received_postal  INTEGER NOT NULL,
    resolved_early   INTEGER NOT NULL,
    resolved_on_time INTEGER NOT NULL,
    resolved_late    INTEGER NOT NULL,
    withdrawn        INTEGER NOT NULL,
    PRIMARY KEY (grain, period, procedure, unit)
) WITHOUT ROWID;
INSERT INTO flow_proc_old SELECT * FROM flow_proc;
DROP TABLE flow_proc;
ALTER TABLE flow_proc_old RENAME TO flow_proc;

CREATE TABLE stock_old (
    grain   INTEGER NOT NULL,
    period  INTEGER NOT NULL,
    unit    TEXT NOT NULL,
    open    INTEGER NOT NULL,
    paused  INTEGER NOT NULL,
    overdue INTEGER NOT NULL,
    PRIMARY KEY (grain, period, unit)
) WITHOUT ROWID;
INSERT INTO stock_old SELECT * FROM stock;
DROP TABLE stock;
ALTER TABLE stock_old RENAME TO stock;

CREATE TABLE stock_proc_old (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    unit      TEXT NOT NULL,
    open      INTEGER NOT NULL,
    paused    INTEGER NOT NULL,
    overdue   INTEGER NOT NULL,
    PRIMARY KEY (grain, period, procedure, unit)
) WITHOUT ROWID;
INSERT INTO stock_proc_old SELECT * FROM stock_proc;
DROP TABLE stock_proc;
ALTER TABLE stock_proc_old RENAME TO stock_proc;

CREATE TABLE transfer_old (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, period, from_unit, to_unit)
) WITHOUT ROWID;
INSERT INTO transfer_old SELECT * FROM transfer;
DROP TABLE transfer;
ALTER TABLE transfer_old RENAME TO transfer;

CREATE TABLE transfer_proc_old (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, period, procedure, from_unit, to_unit)
) WITHOUT ROWID;
INSERT INTO transfer_proc_old SELECT * FROM transfer_proc;
DROP TABLE transfer_proc;
ALTER TABLE transfer_proc_old RENAME TO transfer_proc;
