"""The case processor: assembles each renewal case from scattered facts, decides it, routes the outcome.

    assembler.py  the pure core: (citizen state, one input, time) -> (new state, outputs). No Kafka, no faust.
    citizen.py    the per-citizen state kept in the table (certificates, the open case, what was emitted)
    outputs.py    the output events, with ids derived from the case so a re-delivery is recognisable
    app.py        the faust app: topics, the table keyed by cccd, the one agent, the DLQ, the clock
"""
