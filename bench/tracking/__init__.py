"""The tracking benchmark: scenarios defined exactly, reference trackers, the driver."""
