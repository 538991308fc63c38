"""The detection benchmark: thermal hot spots on real labelled images, EO motion
detection on a rendered scenario, the driver."""
