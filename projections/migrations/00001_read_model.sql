-- The read model of the hoso ledger. Everything here is derived from the
-- stream HOSO_EVENTS and can be rebuilt from it; see docs/read-model.md.

-- +goose Up

-- schema_version: the projection semantics this file was built with;
-- applied_seq / applied_time: the last stream message the projection
-- reached, committed in the same transaction as its effects.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per dossier: its folded state. Times are Unix nanoseconds (UTC).
CREATE TABLE dossiers (
    code           TEXT PRIMARY KEY,
    state          TEXT NOT NULL,
    procedure      TEXT NOT NULL,
    channel        TEXT NOT NULL,
    receiving_unit TEXT NOT NULL,
    owner          TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    due            INTEGER NOT NULL,
    promised_due   INTEGER,
    overdue_marked INTEGER NOT NULL,
    paused_at      INTEGER,
    resolved_at    INTEGER,
    outcome        TEXT NOT NULL,
    result         TEXT NOT NULL,
    closed_at      INTEGER,
    version        INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL
) WITHOUT ROWID;

-- Listings page by (due, code); the backlog groups open dossiers by owner.
CREATE INDEX dossiers_open ON dossiers (owner, state, due, code)
    WHERE state IN ('processing', 'awaiting_supplement');
CREATE INDEX dossiers_owner_due ON dossiers (owner, due, code);
CREATE INDEX dossiers_state_due ON dossiers (state, due, code);
CREATE INDEX dossiers_due ON dossiers (due, code);

-- Every unit code that appears in an aggregate: the report maps each to
-- its row through the registry as it stood on the report's last day.
CREATE TABLE units_seen (
    code TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Aggregates, each at three grains: 0 = local day (days since 1970-01-01),
-- 1 = month (year*12 + month-1), 2 = year. A period [from, to] is summed
-- as whole years + whole months + the remaining days.

-- Flows: what happened in a period, by the unit that owned the dossier.
CREATE TABLE flow (
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

CREATE TABLE flow_proc (
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

-- Transfers as (from, to) pairs, so that a report decides at its own level
-- whether a transfer crosses the border of a row.
CREATE TABLE transfer (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, period, from_unit, to_unit)
) WITHOUT ROWID;

CREATE TABLE transfer_proc (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    from_unit TEXT NOT NULL,
    to_unit   TEXT NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (grain, period, procedure, from_unit, to_unit)
) WITHOUT ROWID;

-- Stock deltas: the dossiers a unit owns and that are open at the end of
-- local day D are the sum of the deltas at days <= D (likewise paused, and
-- overdue: open, not paused, due before the start of day D+1).
CREATE TABLE stock (
    grain   INTEGER NOT NULL,
    period  INTEGER NOT NULL,
    unit    TEXT NOT NULL,
    open    INTEGER NOT NULL,
    paused  INTEGER NOT NULL,
    overdue INTEGER NOT NULL,
    PRIMARY KEY (grain, period, unit)
) WITHOUT ROWID;

CREATE TABLE stock_proc (
    grain     INTEGER NOT NULL,
    period    INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    unit      TEXT NOT NULL,
    open      INTEGER NOT NULL,
    paused    INTEGER NOT NULL,
    overdue   INTEGER NOT NULL,
    PRIMARY KEY (grain, period, procedure, unit)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE stock_proc;
DROP TABLE stock;
DROP TABLE transfer_proc;
DROP TABLE transfer;
DROP TABLE flow_proc;
DROP TABLE flow;
DROP TABLE units_seen;
DROP TABLE dossiers;
DROP TABLE meta;
