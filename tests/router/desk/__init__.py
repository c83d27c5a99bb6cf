"""The desk: the pipeline, handoffs, transitions, promises, aftercare, assist."""
