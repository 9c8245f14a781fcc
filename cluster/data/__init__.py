"""What reads and writes data: the input's index and rows, series cleaning, the
re-partition of ungrouped input, and the output directory (parts, compaction)."""
