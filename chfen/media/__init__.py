"""Media: probe, verify, audio extraction, scene segmentation."""
