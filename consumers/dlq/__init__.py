"""Dead letters for SREs: list them, show one with its original bytes decoded, replay chosen ones once.

Why replay needs care: a dead letter is an input the bus could not use (bad bytes, unknown schema, a rule that has
since been fixed). After the fix, the operator puts the original record back on its original topic. Doing that
twice must not be possible by mistake, so a replayed record carries the header `gplx-replay-of: <dead letter id>`,
and before replaying, the original partition is read from the dead letter's offset on for that header: a dead
letter already replayed is reported as such and not sent again. No ledger topic is needed, and the check works
whoever replayed (another operator, another machine).
"""
from consumers.dlq.letters import DeadLetterView, Filter, decode_original, read_letters
from consumers.dlq.replay import REPLAY_HEADER, ReplayOutcome, replay

__all__ = ["DeadLetterView", "Filter", "REPLAY_HEADER", "ReplayOutcome", "decode_original", "read_letters", "replay"]
