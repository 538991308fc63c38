"""The SQL both store backends share: one spelling that SQLite and PostgreSQL read alike.

Each backend (hq/store/sqlite/, hq/store/postgresql/) owns its connections, its
schema migrations and its ingest write path (the one place where the engines
are fastest written differently); everything else, reads, operator actions, the
audit chain's rows and retention, is written once here against `Db`, and
`SqlStore` (store.py) is the Store built from those pieces.
"""
