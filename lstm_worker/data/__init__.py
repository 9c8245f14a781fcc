"""The table's contract and its Parquet I/O, read in a task and on the driver alike: a
place to read and write (local or an object store), the input's columns and rows, a
series' cleaning, known future inputs, the output directory's layout and a shard's
parts, the model store. The driver's own side (the input's index, its re-partition,
the output's compaction) is in ``cluster.data``."""
