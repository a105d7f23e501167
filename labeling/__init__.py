"""Label Studio integration: labeling config, tasks, predictions, annotation parsing, agreement."""
