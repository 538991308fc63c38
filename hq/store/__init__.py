"""HQ's store: the interface (interface.py) and its records (records.py); each backend a
folder beside them (sqlite/)."""
