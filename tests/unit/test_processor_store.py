"""The citizens table's store: rocksdb:// is budgeted, and a partition opened with it really has the budget."""
from __future__ import annotations

from faust import stores

from topology.processor import store


def test_rocksdb_urls_get_the_budgeted_store_and_others_are_left_alone():
    assert store.url_for("rocksdb://") == "gplx-rocksdb://"
    assert store.url_for("rocksdb:///var/lib/x") == "gplx-rocksdb:///var/lib/x"
    assert store.url_for("memory://") == "memory://"
    assert stores.by_url(store.url_for("rocksdb://")) is store.Store


def test_a_partition_opened_with_the_budget_caps_its_memtables_and_caches_index_blocks(tmp_path):
    store.set_memory_budget(16)
    db = store.BudgetedOptions(use_rocksdict=True).open(tmp_path / "citizens-0.db")
    try:
        db[b"079123456789"] = b"{}"
    finally:
        db.close()
    [options_file] = sorted((tmp_path / "citizens-0.db").glob("OPTIONS-*"))[-1:]
    text = options_file.read_text()
    assert f"write_buffer_size={store.MEMTABLE_MB << 20}" in text
    assert "cache_index_and_filter_blocks=true" in text
    assert "write_buffer_size=67108864" not in text  # faust's per-partition default
