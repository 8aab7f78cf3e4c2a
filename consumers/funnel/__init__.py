"""The renewal funnel per province, computed from the topics' contents (and the portal's accepted issuances),
reconciled with what a simulation planned.

    from consumers.funnel import TopicReader, compute, reconcile, funnel_table, reasons_table
"""
from consumers.funnel.model import STAGES, Case, Funnel, compute, expected_final, reconcile
from consumers.funnel.reader import TopicReader
from consumers.funnel.render import funnel_table, reasons_table

__all__ = ["STAGES", "Case", "Funnel", "compute", "expected_final", "reconcile", "TopicReader", "funnel_table",
           "reasons_table"]
