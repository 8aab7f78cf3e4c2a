"""The citizens table's RocksDB store: faust's own, with one memory budget for the whole worker.

Why: faust opens one RocksDB per table partition, each with its own memtables and block cache, sized for one big
partition (3 x 64 MB memtables, a 2 GB cache). A worker owns a dozen partitions, and which ones changes on every
rebalance, so memory grew with the data until the memtables flushed at 64 MB each: ~170 MB above the baseline at
30,000 open cases. (faust-streaming accepts an app-wide `rocksdb_options` setting but never reads it; only the
table's `options` reach the store.)

Here every partition of the worker shares one LRU cache for data, index and filter blocks, and a write-buffer
manager charges all memtables to that same cache: RocksDB's memory in the worker is bounded by one number,
`GPLX_ROCKSDB_MEMORY_MB`, however many partitions or open cases it holds. Data beyond it stays on disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rocksdict
from faust import stores
from faust.stores import rocksdb as faust_rocksdb

SCHEME = "gplx-rocksdb"
MEMTABLE_MB = 4  # per partition before a flush; the write-buffer manager bounds their sum


@dataclass
class _Budget:
    cache: Any = None
    write_buffers: Any = None


_budget = _Budget()


def url_for(store_url: str) -> str:
    """`rocksdb://...` (what users write) -> this store; anything else (memory://) unchanged."""
    scheme, sep, rest = store_url.partition("://")
    return f"{SCHEME}://{rest}" if sep and scheme == "rocksdb" else store_url


def set_memory_budget(megabytes: int) -> None:
    """Called once per worker before the table opens: half of the cache may hold memtables."""
    cache = rocksdict.Cache(megabytes << 20)
    _budget.cache = cache
    _budget.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        (megabytes << 20) // 2, False, cache)


class BudgetedOptions(faust_rocksdb.RocksDBOptions):
    def as_options(self) -> rocksdict.Options:
        if _budget.cache is None:
            raise RuntimeError("set_memory_budget() must be called before a table partition opens")
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(MEMTABLE_MB << 20)
        options.set_max_write_buffer_number(2)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(_budget.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(_budget.cache)
        table.set_cache_index_and_filter_blocks(True)  # else they live outside the budget and grow with the data
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


class Store(faust_rocksdb.Store):
    """faust's RocksDB store (recovery, changelog offsets, key index) with the budgeted options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rocksdb_options = BudgetedOptions(**self.options, use_rocksdict=True)


stores.STORES.aliases[SCHEME] = f"{__name__}:Store"  # so that `gplx-rocksdb://` names this store
