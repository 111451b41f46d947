-- The catalog: an index of every snapshot's trees, packages, provenance and labels.
-- Derived data: 'osfarm catalog rebuild' recreates it from the repository.
--
-- Trees are indexed once each (Merkle sharing): a snapshot costs rows only for the directories it
-- does not share with snapshots indexed before it. Paths are found by walking down from the roots,
-- digests and names by walking up the child links (entries_child).

CREATE TABLE trees (
  id     INTEGER PRIMARY KEY,
  digest BLOB NOT NULL UNIQUE
);

-- One row per directory entry. name is escaped like the CLI prints it (osfarm Bytes.escape).
CREATE TABLE entries (
  tree   INTEGER NOT NULL,
  name   TEXT    NOT NULL,
  type   TEXT    NOT NULL,
  mode   INTEGER NOT NULL,
  uid    INTEGER NOT NULL,
  gid    INTEGER NOT NULL,
  size   INTEGER NOT NULL,
  digest BLOB,             -- files: SHA-256 of the content
  child  INTEGER,          -- directories: trees.id of the subtree
  link   TEXT,             -- symlinks and hard links: the target
  PRIMARY KEY (tree, name)
) WITHOUT ROWID;
CREATE INDEX entries_digest ON entries (digest) WHERE digest IS NOT NULL;
CREATE INDEX entries_child ON entries (child) WHERE child IS NOT NULL;
CREATE INDEX entries_name ON entries (name);

CREATE TABLE snapshots (
  id      INTEGER PRIMARY KEY,
  digest  BLOB    NOT NULL UNIQUE,
  root    INTEGER NOT NULL,   -- trees.id
  time_ms INTEGER NOT NULL,
  message TEXT    NOT NULL,
  status  BLOB                -- digest of var/lib/dpkg/status, if the image has one
);
CREATE INDEX snapshots_root ON snapshots (root);
CREATE INDEX snapshots_status ON snapshots (status);

CREATE TABLE snapshot_meta (
  snapshot INTEGER NOT NULL,
  key      TEXT    NOT NULL,
  value    TEXT    NOT NULL,
  PRIMARY KEY (snapshot, key)
) WITHOUT ROWID;

-- Where a snapshot came from: kind 'parent' (an earlier version of the same ref) or 'base' (the
-- image an overlay or an install was made from).
CREATE TABLE derivations (
  snapshot INTEGER NOT NULL,
  source   BLOB    NOT NULL,
  kind     TEXT    NOT NULL,
  PRIMARY KEY (snapshot, source, kind)
) WITHOUT ROWID;
CREATE INDEX derivations_source ON derivations (source);

-- Installed packages, once per distinct dpkg status file.
CREATE TABLE packages (
  status         BLOB NOT NULL,
  name           TEXT NOT NULL,
  arch           TEXT NOT NULL,
  version        TEXT NOT NULL,
  source         TEXT NOT NULL,
  source_version TEXT NOT NULL,
  PRIMARY KEY (status, name, arch)
) WITHOUT ROWID;
CREATE INDEX packages_name ON packages (name);
CREATE TABLE statuses (
  digest BLOB PRIMARY KEY
) WITHOUT ROWID;

-- Current refs (mirrors the repository's refs at the last sync).
CREATE TABLE refs (
  name     TEXT PRIMARY KEY,
  snapshot INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refs_snapshot ON refs (snapshot);

-- Labels (mirrors the repository's label ref, see Labels).
CREATE TABLE labels (
  snapshot BLOB NOT NULL,
  key      TEXT NOT NULL,
  value    TEXT NOT NULL,
  PRIMARY KEY (snapshot, key)
) WITHOUT ROWID;
CREATE INDEX labels_kv ON labels (key, value);

-- Words of small text files, once per distinct content.
CREATE TABLE texts (
  id     INTEGER PRIMARY KEY,
  digest BLOB NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE text_index USING fts5 (body, content='', contentless_delete=1);

CREATE TABLE state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
