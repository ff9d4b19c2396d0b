"""The converted columnar store (dense float32 arrays + parquet index tables, memory-mapped)."""

from harness.store.columnar import ColumnarStore, StoreWriter, array_shape, check_destination, read_rows

__all__ = ["ColumnarStore", "StoreWriter", "array_shape", "check_destination", "read_rows"]
